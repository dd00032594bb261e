// Vectorized float32 Erf, Exp and Sigmoid loops (libm's scalar erff/expf dominate GELU and gating in
// transformer backbones); built for AVX2+FMA and a portable target, picked at load by the loader (ifunc).
#pragma once

#include <cstdint>

namespace detrq::runtime::kernels {

// y[i] = f(x[i]) for i < n; x and y may be the same array. Absolute error against the exact function
// below 3e-7 (erf), relative error below 2e-7 (exp, sigmoid); NaN propagates; exp underflows to 0 below
// the normal range.
void erf_f32(const float* x, float* y, int64_t n);
void exp_f32(const float* x, float* y, int64_t n);
void sigmoid_f32(const float* x, float* y, int64_t n);
// GELU as BERT-style exports spell it: y = x * 0.5 * (1 + erf(x / sqrt(2))), absolute error below
// 1e-7 * max(1, |x|); NaN and -inf give NaN, +inf gives +inf.
void gelu_erf_f32(const float* x, float* y, int64_t n);
// Whether GELU's multiply-adds are fused on this CPU (AVX2 and FMA): every GELU, elementwise or in a GEMM
// epilogue, computes it the same way, so fused and unfused graphs agree bit for bit.
bool gelu_uses_fma();

}  // namespace detrq::runtime::kernels
