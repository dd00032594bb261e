// Softmax rows: max, exp and sum, scale. The AVX-512 and AVX2 exp (the same arithmetic) is a degree-5
// polynomial on the reduced argument (relative error ~2e-7), with inputs below the float range flushed to
// exactly 0 so that masked (-inf) logits give 0 like std::exp; a row of -inf only, or holding NaN, gives NaN.
#include "runtime/kernels/math/vector_math.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "runtime/kernels/math/gelu_approx.h"  // detail::fused_mul_add and the vector types

// exp_nonpositive_in_range on AVX vectors is always inlined into functions built for them; g++ still warns at the
// end of the file that passing such vectors by value to code without AVX would change the ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace detrq::runtime::kernels {
namespace {

// e^x for x <= 0 (softmax's shifted logits; NaN propagates): x = n*ln2 + r, n rounded to nearest by adding
// 1.5 * 2^23, whose low mantissa bits then hold n as well (no round or convert instructions); 2^n built in
// the exponent bits. Written once for 8 and 16 lanes (g++ vector types, F floats and I int32 of as many
// lanes): the same operations, so the AVX2 and AVX-512 paths give the same bits. Below the float range
// (x < -87.34, n < -126) the lanes hold garbage: the callers set them to exactly 0, as std::exp underflows,
// each with its ISA's cheapest mask.
template <typename F, typename I>
[[gnu::always_inline]] inline F exp_nonpositive_in_range(F x) {
  const F zero{};
  const F round = zero + 12582912.0F;
  const F t = detail::mul_add<true>(x, zero + 1.44269504088896341F, round);
  const F fx = t - round;
  x = detail::mul_add<true>(-fx, zero + 0.693359375F, x);
  x = detail::mul_add<true>(-fx, zero - 2.12194440e-4F, x);
  F p = zero + 1.9875691500E-4F;
  p = detail::mul_add<true>(p, x, zero + 1.3981999507E-3F);
  p = detail::mul_add<true>(p, x, zero + 8.3334519073E-3F);
  p = detail::mul_add<true>(p, x, zero + 4.1665795894E-2F);
  p = detail::mul_add<true>(p, x, zero + 1.6666665459E-1F);
  p = detail::mul_add<true>(p, x, zero + 5.0000001201E-1F);
  p = detail::mul_add<true>(p, x * x, x + 1.0F);
  // t's bits are those of 1.5 * 2^23 plus n; shifted by 23 only n (and the bias added) remain.
  return p * __builtin_bit_cast(F, (__builtin_bit_cast(I, t) + 127) << 23);
}
// The form for callers built for the vector's ISA (detail::Lanes says why).
template <typename F, typename I>
[[gnu::always_inline]] inline detail::Lanes<F> exp_nonpositive_in_range(detail::Lanes<F> x) {
  return {exp_nonpositive_in_range<F, I>(x.v)};
}

constexpr float kExpUnderflow = -87.3365478515625F;

__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 x) {
  const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(kExpUnderflow), _CMP_LT_OQ);
  const detail::Lanes<detail::v8sf> lanes{__builtin_bit_cast(detail::v8sf, x)};
  const auto e = exp_nonpositive_in_range<detail::v8sf, detail::v8si>(lanes).v;
  return _mm256_andnot_ps(underflow, __builtin_bit_cast(__m256, e));
}

__attribute__((target("avx2,fma"))) float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma"))) float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// The values after the 16-value blocks (fewer than 16): one 8-value step and 1-7 in masked lanes (-inf
// elsewhere, whose exp is 0), not libm, added to `acc`; returns the horizontal sum of acc.
__attribute__((target("avx2,fma"))) inline float exp_shifted_rest_avx2(const float* x, float* y, int64_t n,
                                                                       float shift, __m256 acc) {
  const __m256 vs = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), lane);
    const __m256 in = _mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()),
                                       _mm256_maskload_ps(x + i, mask), _mm256_castsi256_ps(mask));
    const __m256 e = exp_avx2(_mm256_sub_ps(in, vs));
    _mm256_maskstore_ps(y + i, mask, e);
    acc = _mm256_add_ps(acc, e);
  }
  return horizontal_sum(acc);
}

// Writes exp(x - shift) to y and returns its sum; shift is the maximum of x.
__attribute__((target("avx2,fma"))) float exp_shifted_avx2(const float* x, float* y, int64_t n, float shift) {
  const __m256 vs = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {  // two independent sums: the adds' latency stays off the critical path
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    const __m256 e2 = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
    _mm256_storeu_ps(y + i, e);
    _mm256_storeu_ps(y + i + 8, e2);
    acc = _mm256_add_ps(acc, e);
    acc2 = _mm256_add_ps(acc2, e2);
  }
  return exp_shifted_rest_avx2(x + i, y + i, n - i, shift, _mm256_add_ps(acc, acc2));
}

__attribute__((target("avx512f"))) inline __m512 exp_avx512(__m512 x) {
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpUnderflow), _CMP_LT_OQ);
  const detail::Lanes<detail::v16sf> lanes{__builtin_bit_cast(detail::v16sf, x)};
  const auto e = exp_nonpositive_in_range<detail::v16sf, detail::v16si>(lanes).v;
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~underflow), __builtin_bit_cast(__m512, e));
}

// exp_shifted_avx2 with 16 lanes for its 16-value blocks: one zmm sum whose halves are the AVX2 version's two
// sums, the same values and the same order of additions (the rest of the row goes through AVX2 code), so
// both paths give the same bits: a softmax that rounds differently can reorder a near-tie top-k downstream.
__attribute__((target("avx512f,avx2,fma"))) float exp_shifted_avx512(const float* x, float* y, int64_t n,
                                                                      float shift) {
  const __m512 vs = _mm512_set1_ps(shift);
  __m512 acc16 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
    _mm512_storeu_ps(y + i, e);
    acc16 = _mm512_add_ps(acc16, e);
  }
  alignas(64) float halves[16];  // (g++ 12 warns falsely inside the 256-bit extract intrinsics)
  _mm512_store_ps(halves, acc16);
  const __m256 acc = _mm256_add_ps(_mm256_load_ps(halves), _mm256_load_ps(halves + 8));
  return exp_shifted_rest_avx2(x + i, y + i, n - i, shift, acc);
}

__attribute__((target("avx512f"))) float max_avx512(const float* x, int64_t n) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  // The zero-masked forms: g++ 12 warns about the undefined vector the plain ones start from.
  constexpr __mmask16 all = 0xFFFF;
  __m512 m = lowest, m2 = lowest;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m = _mm512_maskz_max_ps(all, m, _mm512_loadu_ps(x + i));
    m2 = _mm512_maskz_max_ps(all, m2, _mm512_loadu_ps(x + i + 16));
  }
  m = _mm512_maskz_max_ps(all, m, m2);
  for (; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 k = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1U << left) - 1U);
    m = _mm512_maskz_max_ps(all, m, _mm512_mask_loadu_ps(lowest, k, x + i));
  }
  // The lanes through memory (g++ 12's _mm512_reduce_max_ps warns about an uninitialized operand).
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  float r = lanes[0];
  for (int i = 1; i < 16; ++i) r = std::max(r, lanes[i]);
  return r;
}

__attribute__((target("avx2,fma"))) float max_avx2(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), m2 = m;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 8));
  }
  m = _mm256_max_ps(m, m2);
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  float r = horizontal_max(m);
  for (; i < n; ++i) r = std::max(r, x[i]);
  return r;
}

float row_max(const float* x, int64_t n, const CpuTarget& target) {
  if (target.avx512f()) return max_avx512(x, n);
  if (target.avx2_fma()) return max_avx2(x, n);
  float r = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) r = std::max(r, x[i]);
  return r;
}

float exp_shifted(const float* x, float* y, int64_t n, float shift, const CpuTarget& target) {
  if (target.avx512f()) return exp_shifted_avx512(x, y, n, shift);
  if (target.avx2_fma()) return exp_shifted_avx2(x, y, n, shift);
  float sum = 0.0F;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - shift);
    sum += y[i];
  }
  return sum;
}

}  // namespace

const char* vector_math_path(const CpuTarget& target) {
  return target.avx512f() ? "avx512" : target.avx2_fma() ? "avx2" : "portable";
}

float exp_minus_max_row(const float* x, float* y, int64_t n, const CpuTarget& target) {
  if (n <= 0) return 0.0F;
  return exp_shifted(x, y, n, row_max(x, n, target), target);
}

void softmax_row(const float* x, float* y, int64_t n, const CpuTarget& target) {
  if (n <= 0) return;
  const float mx = row_max(x, n, target);
  const float sum = exp_shifted(x, y, n, mx, target);
  const float inv = 1.0F / sum;
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

}  // namespace detrq::runtime::kernels
