// QuantizeLinear's arithmetic on AVX-512 and AVX2 registers, shared by the run quantization
// (requantize.cpp) and the int8 GEMM's tile epilogues (int8_gemm/x86/): the code of each lane is
// saturate(rint(v / scale) + zero_point) as an integral float, NaN giving the zero point, the same
// results as the portable code. Inline helpers for target-attributed callers only.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace detrq::runtime::kernels::quant_x86 {

__attribute__((target("avx512f"), always_inline)) inline __m512 code_avx512(__m512 v, __m512 scale, __m512 zp,
                                                                           __m512 lo, __m512 hi) {
  const __m512 d = _mm512_div_ps(v, scale);
  const __mmask16 number = _mm512_cmp_ps_mask(d, d, _CMP_ORD_Q);
  // The zero-masked forms: g++ 12 warns about the undefined vector the plain ones start from.
  constexpr __mmask16 all = 0xFFFF;
  __m512 q = _mm512_add_ps(_mm512_maskz_roundscale_ps(all, d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
  q = _mm512_maskz_min_ps(all, _mm512_maskz_max_ps(all, q, lo), hi);
  return _mm512_mask_blend_ps(number, zp, q);
}

__attribute__((target("avx2"), always_inline)) inline __m256 code_avx2(__m256 v, __m256 scale, __m256 zp, __m256 lo,
                                                                      __m256 hi) {
  const __m256 d = _mm256_div_ps(v, scale);
  const __m256 number = _mm256_cmp_ps(d, d, _CMP_ORD_Q);
  __m256 q = _mm256_add_ps(_mm256_round_ps(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
  q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
  return _mm256_blendv_ps(zp, q, number);
}

// The low byte of each of the 8 int32 codes, in order, as the low 8 bytes: their int8 or uint8 bits.
__attribute__((target("avx2"), always_inline)) inline __m128i low_bytes_avx2(__m256i codes) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i picked = _mm256_shuffle_epi8(codes, pick);
  return _mm_unpacklo_epi32(_mm256_castsi256_si128(picked), _mm256_extracti128_si256(picked, 1));
}

// Stores 8 codes (integral floats within the type's range) as 8 bytes.
__attribute__((target("avx2"), always_inline)) inline void store_codes_avx2(__m256 q, uint8_t* out) {
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), low_bytes_avx2(_mm256_cvtps_epi32(q)));
}

}  // namespace detrq::runtime::kernels::quant_x86
