// The int8 GEMM's AVX2 tiles, 4 rows x 2 vectors of 8 columns (see int8_tiles.h), in two forms that
// share their set-up and their finish:
// - signed bytes: four k values per 32-bit lane, as VNNI's layout. vpmaddubsw multiplies unsigned by
//   signed bytes and adds pairs into int16 with saturation; with |a| <= 128 on the unsigned side (vpsignb
//   of a by itself) and sign(a) * w on the signed side (|w| <= 127, so the negation is exact), a pair is
//   at most 2 * 128 * 127 = 32512 and never saturates; vpmaddwd by ones widens the pairs into int32.
// - int16: activations and weights widened to int16, two k values per lane (vpmaddwd), for weights that
//   hold a -128.
#include <immintrin.h>

#include <utility>

#include "runtime/kernels/int8_gemm/int8_tiles.h"
#include "runtime/kernels/int8_gemm/x86/int8_tile_avx2.h"

namespace detrq::runtime::kernels::int8_detail {
namespace {

template <int MR, int NV>
__attribute__((target("avx2"))) void tile_avx2_s8(const int8_t* a, int64_t lda, const int8_t* w, int64_t panel_stride,
                                                  int64_t groups, const int32_t* corr, const float* scale, float* y,
                                                  int64_t ldy, int64_t cols) {
  __m256i acc[MR][NV];
  zero_tile(acc);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < groups; ++g) {
    __m256i wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      wv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * panel_stride + g * 32));
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(load_i32(a + r * lda + g * 4));
      const __m256i magnitude = _mm256_sign_epi8(av, av);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(wv[v], av));
        acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
  finish_tile(acc, corr, scale, y, ldy, cols);
}

template <int MR, int NV>
__attribute__((target("avx2"))) void tile_avx2(const int16_t* a, int64_t lda, const int16_t* w, int64_t panel_stride,
                                               int64_t groups, const int32_t* corr, const float* scale, float* y,
                                               int64_t ldy, int64_t cols) {
  __m256i acc[MR][NV];
  zero_tile(acc);
  for (int64_t g = 0; g < groups; ++g) {
    __m256i wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      wv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * panel_stride + g * 16));
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(load_i32(a + r * lda + g * 2));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(av, wv[v]));
    }
  }
  finish_tile(acc, corr, scale, y, ldy, cols);
}

template <int... R>
constexpr std::array<std::array<Avx2S8Tile, kVectorsPerTile>, sizeof...(R)> avx2_s8_table(
    std::integer_sequence<int, R...>) {
  return {{{tile_avx2_s8<R + 1, 1>, tile_avx2_s8<R + 1, 2>}...}};
}
template <int... R>
constexpr std::array<std::array<Avx2Tile, kVectorsPerTile>, sizeof...(R)> avx2_table(std::integer_sequence<int, R...>) {
  return {{{tile_avx2<R + 1, 1>, tile_avx2<R + 1, 2>}...}};
}

}  // namespace

const std::array<std::array<Avx2S8Tile, kVectorsPerTile>, kAvx2Rows> kAvx2S8Tiles =
    avx2_s8_table(std::make_integer_sequence<int, kAvx2Rows>());
const std::array<std::array<Avx2Tile, kVectorsPerTile>, kAvx2Rows> kAvx2Tiles =
    avx2_table(std::make_integer_sequence<int, kAvx2Rows>());

// The AVX2 form of flip_sign_bits_avx512 (u8 activations to the s8 that the AVX2-S8 path multiplies).
__attribute__((target("avx2"))) void flip_sign_bits_avx2(const uint8_t* src, uint8_t* dst, int64_t n) {
  const __m256i bit = _mm256_set1_epi8(static_cast<char>(0x80));
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_xor_si256(v, bit));
  }
  for (; i < n; ++i) dst[i] = static_cast<uint8_t>(src[i] ^ 0x80U);
}

}  // namespace detrq::runtime::kernels::int8_detail
