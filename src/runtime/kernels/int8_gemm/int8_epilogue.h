// The int8 GEMM's tile epilogue on vector registers (internal to runtime): what finish_tile in
// int8_gemm.cpp does with scalar loops, with the same results, one variant per ISA
// (int8_epilogue_<isa>.cpp).
#pragma once

#include <cstdint>

#include "runtime/kernels/int8_gemm/int8_gemm.h"

namespace detrq::runtime::kernels {

// Applies out's epilogue (bias, erf GELU, column scale, residual) to the rows x cols (cols <= 32) floats
// at tile (row stride ld), the tile being (r0, c0) of the m x n result, and stores them into out.y as
// floats or, with out.quantize, as int8/uint8 codes. Only for CPUs with AVX-512F.
void finish_tile_avx512(const Int8GemmOutput& out, const float* tile, int64_t ld, int64_t r0, int64_t rows,
                        int64_t c0, int64_t cols, int64_t n);
// The same for CPUs with AVX2 and FMA, any cols.
void finish_tile_avx2(const Int8GemmOutput& out, const float* tile, int64_t ld, int64_t r0, int64_t rows,
                      int64_t c0, int64_t cols, int64_t n);

}  // namespace detrq::runtime::kernels
