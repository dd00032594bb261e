// The int8 GEMM's micro-kernel interface, shared by int8_gemm.cpp (packing, the driver, the reference) and
// the ISA variants in x86/: tiles of up to kVnniRows (VNNI) or kAvx2Rows (AVX2) rows by kVectorsPerTile
// vectors of columns, each tile computing sum_k a * w in int32, subtracting the zero-point correction
// `corr` per column, scaling by `scale` per column and storing `cols` floats per row into y (row stride
// ldy). a holds `groups` groups of k values per row (4 for VNNI and AVX2-S8, 2 for int16), w is the packed
// panel of the first vector, the next vector's panel `panel_stride` elements on. Internal to the family.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace detrq::runtime::kernels::int8_detail {

inline constexpr int kVnniRows = 8;  // 8 rows x 2 vectors of 16 columns: 16 of the 32 zmm registers accumulate
inline constexpr int kAvx2Rows = 4;  // 4 rows x 2 vectors of 8 columns: 8 of the 16 ymm registers accumulate
                                     // (both AVX2 paths, which need registers for signs and pairs)
inline constexpr int kAvxVnniRows = 6;  // 6 rows x 2 vectors of 8 columns: 12 of the 16 ymm registers
inline constexpr int kVectorsPerTile = 2;

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

using VnniTile = void (*)(const uint8_t* a, int64_t lda, const int8_t* w, int64_t panel_stride, int64_t groups,
                          const int32_t* corr, const float* scale, float* y, int64_t ldy, int64_t cols);
using Avx2S8Tile = void (*)(const int8_t* a, int64_t lda, const int8_t* w, int64_t panel_stride, int64_t groups,
                            const int32_t* corr, const float* scale, float* y, int64_t ldy, int64_t cols);
using Avx2Tile = void (*)(const int16_t* a, int64_t lda, const int16_t* w, int64_t panel_stride, int64_t groups,
                          const int32_t* corr, const float* scale, float* y, int64_t ldy, int64_t cols);

// Each tile shape, [rows - 1][vectors - 1].
// x86/int8_gemm_avx512vnni.cpp: u8 activations (s8 shifted by 128) x s8 weights, vpdpbusd.
extern const std::array<std::array<VnniTile, kVectorsPerTile>, kVnniRows> kVnniTiles;
// x86/int8_gemm_avxvnni.cpp: u8 x s8, vpdpbusd on ymm registers, AVX2-S8's panels of 8 columns.
extern const std::array<std::array<VnniTile, kVectorsPerTile>, kAvxVnniRows> kAvxVnniTiles;
// x86/int8_gemm_avx2.cpp: s8 x s8 with vpsignb + vpmaddubsw (weights in [-127, 127]), and int16 x int16
// with vpmaddwd (any weights).
extern const std::array<std::array<Avx2S8Tile, kVectorsPerTile>, kAvx2Rows> kAvx2S8Tiles;
extern const std::array<std::array<Avx2Tile, kVectorsPerTile>, kAvx2Rows> kAvx2Tiles;

// dst = src ^ 0x80 per byte: s8 codes to the u8 that vpdpbusd multiplies, and back (AVX-512BW, AVX2).
void flip_sign_bits_avx512(const uint8_t* src, uint8_t* dst, int64_t n);
void flip_sign_bits_avx2(const uint8_t* src, uint8_t* dst, int64_t n);

}  // namespace detrq::runtime::kernels::int8_detail
