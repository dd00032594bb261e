// Vectorized float32 math used by several compute kernels (softmax rows, exp), with AVX-512 and AVX2/FMA
// versions chosen at run time and a portable one.
#pragma once

#include <cstdint>

namespace detrq::runtime::kernels {

// y = softmax(x) over n contiguous values (x and y may alias).
void softmax_row(const float* x, float* y, int64_t n);
// y = exp(x - max(x)) over n contiguous values, returning the sum of y: softmax without its final
// division, for callers that can divide a smaller product instead (x and y may alias).
float exp_minus_max_row(const float* x, float* y, int64_t n);

// Which code these take: the best this CPU runs (AVX-512, else AVX2/FMA, else portable), or a forced one
// (tests run every path the machine has; forcing one the CPU lacks falls back to the next).
enum class VectorMathPath { kAuto, kAvx2, kPortable };
void set_vector_math_path(VectorMathPath path);

}  // namespace detrq::runtime::kernels
