// Strided gather-copy: fills a contiguous output from an input addressed by arbitrary per-dimension
// element strides (negative for reversed slices, zero for broadcast), the engine behind Slice, Transpose,
// Expand and Tile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "detrq/core/tensor.h"
#include "detrq/core/thread_pool.h"

namespace detrq::runtime::kernels {

// out[i0, i1, ...] = in[sum(i_d * in_strides[d])] for every index of `out_shape` (row-major output).
// `in` points at the element with all indices zero. Dimensions are merged where the strides allow, the
// innermost contiguous run is copied with memcpy, and rows are split across the pool. Allocates nothing
// (at most kMaxDims axes, kernel_support.h).
void strided_copy(std::size_t elem_size, std::span<const int64_t> out_shape, std::span<const int64_t> in_strides,
                  const void* in, void* out, core::ThreadPool& pool);

}  // namespace detrq::runtime::kernels
