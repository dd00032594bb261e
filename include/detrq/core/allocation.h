// Sizes that a file declares, checked against what this process can allocate before anything is allocated:
// a hostile or corrupt model, engine or tensor file gets a clear error naming it, not an allocation failure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "detrq/core/tensor.h"

namespace detrq::core {

// The bytes a tensor of `dtype` and `shape` takes; nullopt when a dimension is negative or the product
// does not fit in 64 bits.
std::optional<uint64_t> tensor_bytes(DType dtype, const Shape& shape) noexcept;
// The most one process can hope to allocate here: the physical memory, lowered to RLIMIT_AS or RLIMIT_DATA
// where those are set lower.
uint64_t memory_limit_bytes() noexcept;
// Refuses (kInvalidInput naming `where`) `bytes` of memory that cannot exist on this machine: more than
// memory_limit_bytes(). `what` says what they are for ("float32[1, 3, 512, 512]").
void check_allocation(uint64_t bytes, const std::string& where, const std::string& what);
// The same for a tensor (a size overflowing 64 bits is refused too).
void check_tensor_allocation(DType dtype, const Shape& shape, const std::string& where);

}  // namespace detrq::core
