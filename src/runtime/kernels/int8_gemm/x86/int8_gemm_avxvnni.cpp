// The int8 GEMM's AVX-VNNI tiles: u8 activations (s8 shifted by 128) times s8 weights, four k values per
// 32-bit lane (vpdpbusd on ymm registers: exact for every weight, no saturation), 6 rows x 2 vectors of 8
// columns over AVX2-S8's panel layout (see int8_tiles.h).
#include <immintrin.h>

#include <utility>

#include "runtime/kernels/int8_gemm/int8_tiles.h"
#include "runtime/kernels/int8_gemm/x86/int8_tile_avx2.h"

namespace detrq::runtime::kernels::int8_detail {
namespace {

template <int MR, int NV>
__attribute__((target("avx2,avxvnni"))) void tile_avxvnni(const uint8_t* a, int64_t lda, const int8_t* w,
                                                           int64_t panel_stride, int64_t groups, const int32_t* corr,
                                                           const float* scale, float* y, int64_t ldy, int64_t cols) {
  __m256i acc[MR][NV];
  zero_tile(acc);
  for (int64_t g = 0; g < groups; ++g) {
    __m256i wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      wv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * panel_stride + g * 32));
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(load_i32(a + r * lda + g * 4));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_dpbusd_avx_epi32(acc[r][v], av, wv[v]);
    }
  }
  finish_tile(acc, corr, scale, y, ldy, cols);
}

template <int... R>
constexpr std::array<std::array<VnniTile, kVectorsPerTile>, sizeof...(R)> avxvnni_table(
    std::integer_sequence<int, R...>) {
  return {{{tile_avxvnni<R + 1, 1>, tile_avxvnni<R + 1, 2>}...}};
}

}  // namespace

const std::array<std::array<VnniTile, kVectorsPerTile>, kAvxVnniRows> kAvxVnniTiles =
    avxvnni_table(std::make_integer_sequence<int, kAvxVnniRows>());

}  // namespace detrq::runtime::kernels::int8_detail
