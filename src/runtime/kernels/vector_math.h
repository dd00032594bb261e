// Vectorized float32 math used by several compute kernels (softmax rows, exp), with an AVX2/FMA
// version chosen at run time and a portable one.
#pragma once

#include <cstdint>

namespace detrq::runtime::kernels {

// y = softmax(x) over n contiguous values (x and y may alias).
void softmax_row(const float* x, float* y, int64_t n);
// y = exp(x - max(x)) over n contiguous values, returning the sum of y: softmax without its final
// division, for callers that can divide a smaller product instead (x and y may alias).
float exp_minus_max_row(const float* x, float* y, int64_t n);

}  // namespace detrq::runtime::kernels
