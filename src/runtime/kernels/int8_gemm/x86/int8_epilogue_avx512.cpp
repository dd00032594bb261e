// The int8 GEMM's tile epilogue on AVX-512 registers (see int8_epilogue.h): each 16-column
// vector of a row goes through bias, GELU (gelu_approx.h, the same bits as the float GEMM's), column
// scale and residual, then QuantizeLinear's division, rounding half to even and saturation, and is
// stored as floats or narrowed to bytes, without another pass over memory.
#include "runtime/kernels/int8_gemm/int8_epilogue.h"

#include <immintrin.h>

#include "runtime/kernels/math/gelu_approx.h"
#include "runtime/kernels/quantization/x86/quant_codes_x86.h"

// gelu_approx is instantiated for 16-lane vectors and only ever inlined into AVX-512 code: the ABI note
// g++ gives for the instantiation itself does not apply (as in gemm.cpp).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace detrq::runtime::kernels {
namespace {

using detail::v16sf;
using detail::v16si;

__attribute__((target("avx512f,fma"))) inline __m512 gelu16(__m512 x) {
  return __builtin_bit_cast(__m512, detail::gelu_approx<v16sf, v16si, true>(detail::Lanes<v16sf>{__builtin_bit_cast(v16sf, x)}).v);
}

}  // namespace

__attribute__((target("avx512f,fma"))) void finish_tile_avx512(const Int8GemmOutput& out, const float* tile,
                                                                 int64_t ld, int64_t r0, int64_t rows, int64_t c0,
                                                                 int64_t cols, int64_t n) {
  const GemmEpilogue& e = out.epilogue;
  const __m512 scale = _mm512_set1_ps(out.out_scale), zp = _mm512_set1_ps(static_cast<float>(out.out_zero_point));
  const __m512 lo = _mm512_set1_ps(out.out_signed ? -128.0F : 0.0F);
  const __m512 hi = _mm512_set1_ps(out.out_signed ? 127.0F : 255.0F);
  const bool gelu = e.activation == GemmActivation::kGeluErf;
  for (int64_t v = 0; v * 16 < cols; ++v) {
    const int64_t left = cols - v * 16;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1U << left) - 1U);
    const int64_t col = c0 + v * 16;
    const __m512 bias = e.bias ? _mm512_maskz_loadu_ps(m, e.bias + col) : _mm512_setzero_ps();
    const __m512 col_scale = e.col_scale ? _mm512_maskz_loadu_ps(m, e.col_scale + col) : _mm512_set1_ps(1.0F);
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t at = (r0 + i) * n + col;
      __m512 f = _mm512_maskz_loadu_ps(m, tile + i * ld + v * 16);
      if (e.row_bias) f = _mm512_add_ps(f, _mm512_set1_ps(e.row_bias[r0 + i]));
      if (e.bias) f = _mm512_add_ps(f, bias);
      if (gelu) f = gelu16(f);
      if (e.col_scale) f = _mm512_mul_ps(f, col_scale);
      if (e.residual) f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(m, e.residual + at));
      if (!out.quantize) {
        _mm512_mask_storeu_ps(static_cast<float*>(out.y) + at, m, f);
        continue;
      }
      const __m512i codes = _mm512_maskz_cvtps_epi32(__mmask16(0xFFFF), quant_x86::code_avx512(f, scale, zp, lo, hi));
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(out.y) + at, m, codes);  // low bytes: the codes
    }
  }
}

}  // namespace detrq::runtime::kernels
