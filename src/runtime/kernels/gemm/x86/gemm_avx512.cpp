// The float GEMM's AVX-512 micro-kernel: a 12 x 32 tile over two adjacent B panels.
#include <immintrin.h>

#include "runtime/kernels/gemm/gemm_micro_kernel.h"
#include "runtime/kernels/math/gelu_approx.h"

// gelu_approx on AVX vectors is always inlined here; g++ still warns that passing such vectors by value
// to code without AVX would change the ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace detrq::runtime::kernels::gemm_detail {

__attribute__((target("avx512f"), always_inline)) inline void store_half_avx512(float* row, __m512 v, __m512 va,
                                                                                 bool accumulate,
                                                                                 const TileEpilogue* ep, int i,
                                                                                 int64_t ldc, int half) {
  const int64_t j = half * kGemmNr;
  v = _mm512_mul_ps(v, va);
  if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(row + j));
  if (ep) {
    if (ep->row_bias) v = _mm512_add_ps(v, _mm512_set1_ps(ep->row_bias[i]));
    if (ep->col_bias) v = _mm512_add_ps(v, _mm512_loadu_ps(ep->col_bias + j));
    if (ep->gelu) v = detail::gelu_approx<detail::v16sf, detail::v16si, true>(detail::Lanes<detail::v16sf>{v}).v;
    if (ep->col_scale) v = _mm512_mul_ps(v, _mm512_loadu_ps(ep->col_scale + j));
    if (ep->residual) v = _mm512_add_ps(v, _mm512_loadu_ps(ep->residual + i * ldc + j));
  }
  _mm512_storeu_ps(row + j, v);
}

// 12 rows x 32 columns (two adjacent B panels: the second starts kc * kGemmNr floats after the first),
// two zmm accumulators per row: per step two B loads and 12 broadcasts feed 24 FMAs, a third of the loads
// per FMA of the 6 x 16 AVX2 tile. A is read in place (rows a_row apart). On Zen 4, which runs a zmm FMA
// as two halves, the arithmetic rate is that of AVX2; the saving is in loads and instructions.
__attribute__((target("avx512f"))) void micro_kernel_avx512_wide(int64_t kc, const float* a, int64_t a_row,
                                                                  const float* b, float* c, int64_t ldc, float alpha,
                                                                  bool accumulate, const TileEpilogue* ep) {
  for (int i = 0; i < kAvx512WideMr; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 31), _MM_HINT_T0);
  }
  const float* b1 = b + kc * kGemmNr;
  // Rows 3j, 3j+1, 3j+2 from one base pointer each: few address registers for 12 rows.
  const float* a0 = a;
  const float* a3 = a + 3 * a_row;
  const float* a6 = a + 6 * a_row;
  const float* a9 = a + 9 * a_row;
  const int64_t r1 = a_row, r2 = 2 * a_row;
  __m512 lo[kAvx512WideMr], hi[kAvx512WideMr];
#pragma GCC unroll 12
  for (int i = 0; i < kAvx512WideMr; ++i) lo[i] = hi[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0v = _mm512_loadu_ps(b + p * kGemmNr);
    const __m512 b1v = _mm512_loadu_ps(b1 + p * kGemmNr);
    const float* base[4] = {a0 + p, a3 + p, a6 + p, a9 + p};
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m512 av = _mm512_set1_ps(base[j][0]);
      lo[3 * j] = _mm512_fmadd_ps(av, b0v, lo[3 * j]);
      hi[3 * j] = _mm512_fmadd_ps(av, b1v, hi[3 * j]);
      av = _mm512_set1_ps(base[j][r1]);
      lo[3 * j + 1] = _mm512_fmadd_ps(av, b0v, lo[3 * j + 1]);
      hi[3 * j + 1] = _mm512_fmadd_ps(av, b1v, hi[3 * j + 1]);
      av = _mm512_set1_ps(base[j][r2]);
      lo[3 * j + 2] = _mm512_fmadd_ps(av, b0v, lo[3 * j + 2]);
      hi[3 * j + 2] = _mm512_fmadd_ps(av, b1v, hi[3 * j + 2]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 12
  for (int i = 0; i < kAvx512WideMr; ++i) {
    store_half_avx512(c + i * ldc, lo[i], va, accumulate, ep, i, ldc, 0);
    store_half_avx512(c + i * ldc, hi[i], va, accumulate, ep, i, ldc, 1);
  }
}

}  // namespace detrq::runtime::kernels::gemm_detail
