// Vectorized float32 math used by several compute kernels (softmax rows, exp), with AVX-512 and AVX2/FMA
// versions and a portable one, the session's CpuTarget choosing.
#pragma once

#include <cstdint>

#include "detrq/runtime/cpu_target.h"

namespace detrq::runtime::kernels {

// y = softmax(x) over n contiguous values (x and y may alias), on AVX-512 where `target` has avx512f (with
// avx2 and fma), else AVX2 where it has avx2 and fma, else portable code. Both vector paths give the same
// bits.
void softmax_row(const float* x, float* y, int64_t n, const CpuTarget& target);
// y = exp(x - max(x)) over n contiguous values, returning the sum of y: softmax without its final
// division, for callers that can divide a smaller product instead (x and y may alias).
float exp_minus_max_row(const float* x, float* y, int64_t n, const CpuTarget& target);
// Which path those take for `target`: "avx512", "avx2" or "portable" (tests name the one they ran).
const char* vector_math_path(const CpuTarget& target);

}  // namespace detrq::runtime::kernels
