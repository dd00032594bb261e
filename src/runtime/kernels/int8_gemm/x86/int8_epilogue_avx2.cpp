// The int8 GEMM's tile epilogue on AVX2 registers (see int8_epilogue.h): each
// 8-column vector of a row goes through bias, GELU (gelu_approx.h with fused
// multiply-adds, the same bits as the float GEMM's on an AVX2 and FMA target),
// column scale and residual, then QuantizeLinear's division, rounding half to
// even and saturation, and is stored as floats or narrowed to bytes, without
// another pass over memory. The last, partial vector of a row goes through the
// same arithmetic in a small buffer.
#include <immintrin.h>

#include <cstring>

#include "runtime/kernels/math/gelu_approx.h"
#include "runtime/kernels/int8_gemm/int8_epilogue.h"
#include "runtime/kernels/quantization/x86/quant_codes_x86.h"

// gelu_approx is instantiated for 8-lane vectors and only ever inlined into
// AVX2 code: the ABI note g++ gives for the instantiation itself does not apply
// (as in gemm.cpp).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace detrq::runtime::kernels {
namespace {

using detail::v8sf;
using detail::v8si;

__attribute__((target("avx2,fma"))) inline __m256 gelu8(__m256 x) {
  return __builtin_bit_cast(__m256,
                            detail::gelu_approx<v8sf, v8si, true>(detail::Lanes<v8sf>{__builtin_bit_cast(v8sf, x)}).v);
}

// min(count, 8) floats from p, the rest zero.
__attribute__((target("avx2"))) inline __m256 load8(const float *p, int64_t count) {
  if (count >= 8) return _mm256_loadu_ps(p);
  alignas(32) float buf[8] = {};
  std::memcpy(buf, p, static_cast<std::size_t>(count) * sizeof(float));
  return _mm256_load_ps(buf);
}

}  // namespace

__attribute__((target("avx2,fma"))) void finish_tile_avx2(const Int8GemmOutput &out, const float *tile, int64_t ld,
                                                          int64_t r0, int64_t rows, int64_t c0, int64_t cols,
                                                          int64_t n) {
  const GemmEpilogue &e = out.epilogue;
  const __m256 scale = _mm256_set1_ps(out.out_scale), zp = _mm256_set1_ps(static_cast<float>(out.out_zero_point));
  const __m256 lo = _mm256_set1_ps(out.out_signed ? -128.0F : 0.0F);
  const __m256 hi = _mm256_set1_ps(out.out_signed ? 127.0F : 255.0F);
  const bool gelu = e.activation == GemmActivation::kGeluErf;
  for (int64_t v = 0; v * 8 < cols; ++v) {
    const int64_t left = cols - v * 8;
    const bool whole = left >= 8;
    const int64_t col = c0 + v * 8;
    const __m256 bias = e.bias ? load8(e.bias + col, left) : _mm256_setzero_ps();
    const __m256 col_scale = e.col_scale ? load8(e.col_scale + col, left) : _mm256_set1_ps(1.0F);
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t at = (r0 + i) * n + col;
      __m256 f = load8(tile + i * ld + v * 8, left);
      if (e.row_bias) f = _mm256_add_ps(f, _mm256_set1_ps(e.row_bias[r0 + i]));
      if (e.bias) f = _mm256_add_ps(f, bias);
      if (gelu) f = gelu8(f);
      if (e.col_scale) f = _mm256_mul_ps(f, col_scale);
      if (e.residual) f = _mm256_add_ps(f, load8(e.residual + at, left));
      if (!out.quantize) {
        float *dst = static_cast<float *>(out.y) + at;
        if (whole) {
          _mm256_storeu_ps(dst, f);
        } else {
          alignas(32) float buf[8];
          _mm256_store_ps(buf, f);
          std::memcpy(dst, buf, static_cast<std::size_t>(left) * sizeof(float));
        }
        continue;
      }
      const __m128i bytes = quant_x86::low_bytes_avx2(_mm256_cvtps_epi32(quant_x86::code_avx2(f, scale, zp, lo, hi)));
      uint8_t *dst = static_cast<uint8_t *>(out.y) + at;
      if (whole) {
        _mm_storel_epi64(reinterpret_cast<__m128i *>(dst), bytes);
      } else {
        alignas(16) uint8_t buf[16];
        _mm_store_si128(reinterpret_cast<__m128i *>(buf), bytes);
        std::memcpy(dst, buf, static_cast<std::size_t>(left));
      }
    }
  }
}

}  // namespace detrq::runtime::kernels
