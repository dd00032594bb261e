// What the 256-bit int8 tiles share (x86/int8_gemm_avx2.cpp, x86/int8_gemm_avxvnni.cpp): zeroing the
// int32 accumulators and finishing them, (acc - corr) * scale per column, stored as floats. Inline
// helpers for target-attributed callers only.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace detrq::runtime::kernels::int8_detail {

template <int MR, int NV>
__attribute__((target("avx2"), always_inline)) inline void zero_tile(__m256i (&acc)[MR][NV]) {
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
  }
}

// The store of 8 finished columns: a plain store where all 8 are inside the tile (every vector but the
// last one of a row), a masked one at the edge (vmaskmovps is slow on some CPUs: edges only).
__attribute__((target("avx2"), always_inline)) inline void store8(float* y, __m256 f, int64_t left) {
  if (left >= 8) {
    _mm256_storeu_ps(y, f);
    return;
  }
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), lane), f);
}

// (acc - corr) * scale per column, stored as floats: `cols` of the tile's columns.
template <int MR, int NV>
__attribute__((target("avx2"), always_inline)) inline void finish_tile(const __m256i (&acc)[MR][NV],
                                                                      const int32_t* corr, const float* scale,
                                                                      float* y, int64_t ldy, int64_t cols) {
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const int64_t left = cols - v * 8;
    if (left <= 0) break;
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + v * 8));
    const __m256 s = _mm256_loadu_ps(scale + v * 8);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      store8(y + r * ldy + v * 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][v], c)), s), left);
    }
  }
}

}  // namespace detrq::runtime::kernels::int8_detail
