// Greedy-by-size offset assignment for the Session arena (the heuristic TFLite's planner uses):
// near-optimal on inference graphs and cheap enough for thousands of tensors.
#include "memory_plan.h"

#include <algorithm>
#include <numeric>

#include "detrq/core/tensor.h"

namespace detrq::runtime::detail {

MemoryPlan plan_memory(const std::vector<BufferLifetime>& buffers) {
  constexpr std::size_t kAlign = core::kTensorAlignment;
  auto aligned = [](std::size_t b) { return (b + kAlign - 1) / kAlign * kAlign; };
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<std::size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  std::vector<std::size_t> placed;
  placed.reserve(buffers.size());
  std::vector<std::pair<std::size_t, std::size_t>> busy;  // [offset, end) of overlapping placed buffers
  for (std::size_t idx : order) {
    const BufferLifetime& b = buffers[idx];
    const std::size_t size = aligned(b.bytes);
    busy.clear();
    for (std::size_t p : placed) {
      const BufferLifetime& q = buffers[p];
      if (q.last_step < b.first_step || b.last_step < q.first_step) continue;
      busy.emplace_back(plan.offsets[p], plan.offsets[p] + aligned(q.bytes));
    }
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap that holds the buffer, else after the last busy range.
    std::size_t best = SIZE_MAX;
    std::size_t best_gap = SIZE_MAX;
    std::size_t cursor = 0;
    for (const auto& [begin, end] : busy) {
      if (begin > cursor && begin - cursor >= size && begin - cursor < best_gap) {
        best = cursor;
        best_gap = begin - cursor;
      }
      cursor = std::max(cursor, end);
    }
    if (best == SIZE_MAX) best = cursor;
    plan.offsets[idx] = best;
    plan.arena_bytes = std::max(plan.arena_bytes, best + size);
    if (size > 0) placed.push_back(idx);
  }
  return plan;
}

}  // namespace detrq::runtime::detail
