// The float GEMM's micro-kernel interface, shared by gemm.cpp (packing, tiling, the portable kernel) and
// the ISA variants in x86/ (one file each). Internal to the gemm family.
#pragma once

#include <cstdint>

#include "runtime/kernels/gemm/gemm.h"

namespace detrq::runtime::kernels::gemm_detail {

// What a whole tile of the last depth block applies on its registers before the store, in this order:
// a bias per row (mr values), a bias per column (the tile's kGemmNr values), GELU, a scale per column, a
// residual (the tile's corner of it, row stride ldc). As apply_gemm_epilogue does, without another pass.
struct TileEpilogue {
  const float* row_bias = nullptr;
  const float* col_bias = nullptr;
  bool gelu = false;
  bool gelu_fma = false;  // the portable kernel's GELU fuses its multiply-adds (gelu_uses_fma(target))
  const float* col_scale = nullptr;
  const float* residual = nullptr;
};

// Computes the mr x kGemmNr tile sum_k A[i][k] * b[k][j] and stores alpha * tile (+ C), then the
// epilogue when `ep` is set, into c. A's element (i, p) is at a[i * a_row + p * a_step]: a packed panel
// (a_row 1, a_step mr) or rows of the caller's matrix read in place (a_row its row stride, a_step 1),
// which saves packing A.
using MicroKernel = void (*)(int64_t kc, const float* a, int64_t a_row, int64_t a_step, const float* b, float* c,
                             int64_t ldc, float alpha, bool accumulate, const TileEpilogue* ep);

// A tile of 2 * kGemmNr columns read from two adjacent B panels; A in place only.
using WideMicroKernel = void (*)(int64_t kc, const float* a, int64_t a_row, const float* b, float* c, int64_t ldc,
                                 float alpha, bool accumulate, const TileEpilogue* ep);

constexpr int64_t kAvx2Mr = 6;
constexpr int64_t kAvx512WideMr = 12;

// The AVX2/FMA 6 x 16 tile (x86/gemm_avx2.cpp) and the AVX-512 12 x 32 tile (x86/gemm_avx512.cpp).
void micro_kernel_avx2(int64_t kc, const float* a, int64_t a_row, int64_t a_step, const float* b, float* c,
                       int64_t ldc, float alpha, bool accumulate, const TileEpilogue* ep);
void micro_kernel_avx512_wide(int64_t kc, const float* a, int64_t a_row, const float* b, float* c, int64_t ldc,
                              float alpha, bool accumulate, const TileEpilogue* ep);

}  // namespace detrq::runtime::kernels::gemm_detail
