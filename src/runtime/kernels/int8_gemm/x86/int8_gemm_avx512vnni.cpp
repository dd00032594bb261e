// The int8 GEMM's AVX512-VNNI tiles: u8 activations (s8 shifted by 128) times s8 weights, four k values
// per 32-bit lane (vpdpbusd), 8 rows x 2 vectors of 16 columns (see int8_tiles.h).
#include <immintrin.h>

#include <utility>

#include "runtime/kernels/int8_gemm/int8_tiles.h"

namespace detrq::runtime::kernels::int8_detail {
namespace {

template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile_vnni(const uint8_t* a, int64_t lda, const int8_t* w,
                                                                        int64_t panel_stride, int64_t groups,
                                                                        const int32_t* corr, const float* scale,
                                                                        float* y, int64_t ldy, int64_t cols) {
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m512i wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w + v * panel_stride + g * 64);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(load_i32(a + r * lda + g * 4));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, wv[v]);
    }
  }
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const int64_t left = cols - v * 16;
    if (left <= 0) break;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1U << left) - 1U);
    const __m512i c = _mm512_loadu_si512(corr + v * 16);
    const __m512 s = _mm512_loadu_ps(scale + v * 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      // The zero-masked conversion: g++ 12 warns about the undefined vector the plain one starts from.
      const __m512 f = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(__mmask16(0xFFFF), _mm512_sub_epi32(acc[r][v], c)), s);
      _mm512_mask_storeu_ps(y + r * ldy + v * 16, mask, f);
    }
  }
}

template <int... R>
constexpr std::array<std::array<VnniTile, kVectorsPerTile>, sizeof...(R)> vnni_table(std::integer_sequence<int, R...>) {
  return {{{tile_vnni<R + 1, 1>, tile_vnni<R + 1, 2>}...}};
}

}  // namespace

const std::array<std::array<VnniTile, kVectorsPerTile>, kVnniRows> kVnniTiles =
    vnni_table(std::make_integer_sequence<int, kVnniRows>());

// dst = src ^ 0x80 per byte (s8 to the u8 that vpdpbusd multiplies), 64 bytes at a time; a profile of
// the all-INT8 model had the byte loop at 10% of the run.
__attribute__((target("avx512f,avx512bw"))) void flip_sign_bits_avx512(const uint8_t* src, uint8_t* dst, int64_t n) {
  const __m512i bit = _mm512_set1_epi8(static_cast<char>(0x80));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), bit));
  }
  if (i < n) {
    const __mmask64 m = (~0ULL) >> (64 - (n - i));
    _mm512_mask_storeu_epi8(dst + i, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + i), bit));
  }
}

}  // namespace detrq::runtime::kernels::int8_detail
