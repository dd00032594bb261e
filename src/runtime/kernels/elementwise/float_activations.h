// Vectorized float32 Erf, Exp and Sigmoid loops (libm's scalar erff/expf dominate GELU and gating in
// transformer backbones); built for AVX2+FMA and for any x86-64, the session's CpuTarget choosing.
#pragma once

#include <cstdint>

#include "detrq/runtime/cpu_target.h"

namespace detrq::runtime::kernels {

// y[i] = f(x[i]) for i < n; x and y may be the same array. Absolute error against the exact function
// below 3e-7 (erf), relative error below 2e-7 (exp, sigmoid); NaN propagates; exp underflows to 0 below
// the normal range. The AVX2+FMA build runs where `target` has both; the two give the same bits (no
// multiply-add is fused in them).
void erf_f32(const float* x, float* y, int64_t n, const CpuTarget& target);
void exp_f32(const float* x, float* y, int64_t n, const CpuTarget& target);
void sigmoid_f32(const float* x, float* y, int64_t n, const CpuTarget& target);
// GELU as BERT-style exports spell it: y = x * 0.5 * (1 + erf(x / sqrt(2))), absolute error below
// 1e-7 * max(1, |x|); NaN and -inf give NaN, +inf gives +inf.
void gelu_erf_f32(const float* x, float* y, int64_t n, const CpuTarget& target);
// Whether GELU's multiply-adds are fused for `target` (it has AVX2 and FMA): every GELU of a session,
// elementwise or in a GEMM epilogue, computes it the same way, so fused and unfused graphs agree bit for bit.
bool gelu_uses_fma(const CpuTarget& target);

}  // namespace detrq::runtime::kernels
