// Quantization of runs of floats (see requantize.h): AVX-512 and AVX2 paths and a portable one with the
// same results (division, round half to even, saturation in float, NaN to the zero point).
#include "runtime/kernels/quantization/requantize.h"

#include <immintrin.h>

#include <cmath>

#include "runtime/kernels/quantization/x86/quant_codes_x86.h"

namespace detrq::runtime::kernels {
namespace {

using quant_x86::code_avx2;
using quant_x86::code_avx512;
using quant_x86::store_codes_avx2;

struct Range {
  float lo, hi;
};
Range range(bool is_signed) { return is_signed ? Range{-128.0F, 127.0F} : Range{0.0F, 255.0F}; }

// The code of one value, as a float: saturate(rint(v / scale) + zero_point), NaN to the zero point.
inline float code_portable(float v, float scale, float zp, Range r) {
  float q = std::rint(v / scale) + zp;
  q = q < r.lo ? r.lo : q;
  q = q > r.hi ? r.hi : q;
  return q == q ? q : zp;
}

__attribute__((target("avx512f"))) void quantize_avx512(const float* x, void* y, bool is_signed, int64_t n,
                                                        float scale, int32_t zero_point) {
  const Range r = range(is_signed);
  const __m512 s = _mm512_set1_ps(scale), zp = _mm512_set1_ps(static_cast<float>(zero_point));
  const __m512 lo = _mm512_set1_ps(r.lo), hi = _mm512_set1_ps(r.hi);
  auto* out = static_cast<uint8_t*>(y);
  int64_t i = 0;
  for (; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1U << left) - 1U);
    const __m512 q = code_avx512(_mm512_maskz_loadu_ps(m, x + i), s, zp, lo, hi);
    const __m512i codes = _mm512_maskz_cvtps_epi32(__mmask16(0xFFFF), q);  // exact: q is integral and in range
    // The low byte of each 32-bit code is its int8 or uint8 bits.
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, codes);
  }
}

__attribute__((target("avx512f"))) void quantize_by_product_avx512(const float* x, void* y, bool is_signed,
                                                                   int64_t n, float factor, int32_t zero_point) {
  const Range r = range(is_signed);
  const __m512 f = _mm512_set1_ps(factor), one = _mm512_set1_ps(1.0F);
  const __m512 zp = _mm512_set1_ps(static_cast<float>(zero_point));
  const __m512 lo = _mm512_set1_ps(r.lo), hi = _mm512_set1_ps(r.hi);
  auto* out = static_cast<uint8_t*>(y);
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1U << left) - 1U);
    const __m512 q = code_avx512(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), f), one, zp, lo, hi);
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, _mm512_maskz_cvtps_epi32(__mmask16(0xFFFF), q));
  }
}

__attribute__((target("avx512f"))) void fake_quantize_avx512(float* x, bool is_signed, int64_t n, float pre,
                                                             float scale, int32_t zero_point) {
  const Range r = range(is_signed);
  const __m512 s = _mm512_set1_ps(scale), zp = _mm512_set1_ps(static_cast<float>(zero_point));
  const __m512 lo = _mm512_set1_ps(r.lo), hi = _mm512_set1_ps(r.hi), p = _mm512_set1_ps(pre / scale);
  const __m512 one = _mm512_set1_ps(1.0F);
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1U << left) - 1U);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), p);
    const __m512 q = code_avx512(v, one, zp, lo, hi);  // the division by 1 is exact
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_sub_ps(q, zp), s));
  }
}

// ---- AVX2: whole vectors of 8, the tail by the portable code (the same arithmetic).

__attribute__((target("avx2"))) int64_t quantize_avx2(const float* x, void* y, bool is_signed, int64_t n, float scale,
                                                      int32_t zero_point) {
  const Range r = range(is_signed);
  const __m256 s = _mm256_set1_ps(scale), zp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_set1_ps(r.lo), hi = _mm256_set1_ps(r.hi);
  auto* out = static_cast<uint8_t*>(y);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store_codes_avx2(code_avx2(_mm256_loadu_ps(x + i), s, zp, lo, hi), out + i);
  return i;
}

__attribute__((target("avx2"))) int64_t quantize_by_product_avx2(const float* x, void* y, bool is_signed, int64_t n,
                                                                 float factor, int32_t zero_point) {
  const Range r = range(is_signed);
  const __m256 f = _mm256_set1_ps(factor), one = _mm256_set1_ps(1.0F);
  const __m256 zp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_set1_ps(r.lo), hi = _mm256_set1_ps(r.hi);
  auto* out = static_cast<uint8_t*>(y);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    store_codes_avx2(code_avx2(_mm256_mul_ps(_mm256_loadu_ps(x + i), f), one, zp, lo, hi), out + i);
  }
  return i;
}

__attribute__((target("avx2"))) int64_t fake_quantize_avx2(float* x, bool is_signed, int64_t n, float pre, float scale,
                                                           int32_t zero_point) {
  const Range r = range(is_signed);
  const __m256 s = _mm256_set1_ps(scale), zp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_set1_ps(r.lo), hi = _mm256_set1_ps(r.hi), p = _mm256_set1_ps(pre / scale);
  const __m256 one = _mm256_set1_ps(1.0F);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 q = code_avx2(_mm256_mul_ps(_mm256_loadu_ps(x + i), p), one, zp, lo, hi);
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_sub_ps(q, zp), s));
  }
  return i;
}

}  // namespace

void quantize_run(const float* x, void* y, bool is_signed, int64_t n, float scale, int32_t zero_point,
                  const CpuTarget& target) {
  if (target.avx512f()) {
    quantize_avx512(x, y, is_signed, n, scale, zero_point);
    return;
  }
  const int64_t done = target.has(CpuFeature::kAvx2) ? quantize_avx2(x, y, is_signed, n, scale, zero_point) : 0;
  const Range r = range(is_signed);
  const auto zp = static_cast<float>(zero_point);
  for (int64_t i = done; i < n; ++i) {
    const float q = code_portable(x[i], scale, zp, r);
    if (is_signed) {
      static_cast<int8_t*>(y)[i] = static_cast<int8_t>(q);
    } else {
      static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(q);
    }
  }
}

void quantize_run_by_product(const float* x, void* y, bool is_signed, int64_t n, float factor, int32_t zero_point,
                             const CpuTarget& target) {
  if (target.avx512f()) {
    quantize_by_product_avx512(x, y, is_signed, n, factor, zero_point);
    return;
  }
  const int64_t done = target.has(CpuFeature::kAvx2) ? quantize_by_product_avx2(x, y, is_signed, n, factor, zero_point) : 0;
  const Range r = range(is_signed);
  const auto zp = static_cast<float>(zero_point);
  for (int64_t i = done; i < n; ++i) {
    const float q = code_portable(x[i] * factor, 1.0F, zp, r);
    if (is_signed) {
      static_cast<int8_t*>(y)[i] = static_cast<int8_t>(q);
    } else {
      static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(q);
    }
  }
}

void fake_quantize_run(float* x, bool is_signed, int64_t n, float pre, float scale, int32_t zero_point,
                       const CpuTarget& target) {
  if (target.avx512f()) {
    fake_quantize_avx512(x, is_signed, n, pre, scale, zero_point);
    return;
  }
  const int64_t done = target.has(CpuFeature::kAvx2) ? fake_quantize_avx2(x, is_signed, n, pre, scale, zero_point) : 0;
  const Range r = range(is_signed);
  const auto zp = static_cast<float>(zero_point);
  const float factor = pre / scale;
  for (int64_t i = done; i < n; ++i) x[i] = (code_portable(x[i] * factor, 1.0F, zp, r) - zp) * scale;
}

}  // namespace detrq::runtime::kernels
