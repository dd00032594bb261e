// Memory planning for the Session's one arena: buffers with known sizes and lifetimes (first and
// last step that touches them) get offsets so that buffers alive at the same time never overlap.
#pragma once

#include <cstddef>
#include <vector>

namespace detrq::runtime::detail {

struct BufferLifetime {
  std::size_t bytes = 0;
  int first_step = 0;  // the step that writes it
  int last_step = 0;   // the last step that reads it (inclusive)
};

struct MemoryPlan {
  std::vector<std::size_t> offsets;  // one per buffer, aligned to kTensorAlignment
  std::size_t arena_bytes = 0;
};

// Greedy by size: the largest buffers are placed first, each at the lowest offset where it fits
// between the buffers already placed whose lifetimes overlap its own.
MemoryPlan plan_memory(const std::vector<BufferLifetime>& buffers);

}  // namespace detrq::runtime::detail
