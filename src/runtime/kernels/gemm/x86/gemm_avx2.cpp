// The float GEMM's AVX2/FMA micro-kernel: a 6 x 16 tile, two ymm accumulators per row.
#include <immintrin.h>

#include "runtime/kernels/gemm/gemm_micro_kernel.h"
#include "runtime/kernels/math/gelu_approx.h"

// gelu_approx on AVX vectors is always inlined here; g++ still warns that passing such vectors by value
// to code without AVX would change the ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace detrq::runtime::kernels::gemm_detail {

__attribute__((target("avx2,fma"), always_inline)) inline void store_row_avx2(float* row, __m256 lo, __m256 hi,
                                                                                __m256 va, bool accumulate,
                                                                                const TileEpilogue* ep, int i,
                                                                                int64_t ldc) {
  lo = _mm256_mul_ps(lo, va);
  hi = _mm256_mul_ps(hi, va);
  if (accumulate) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
  }
  if (ep) {
    if (ep->row_bias) {
      const __m256 rb = _mm256_set1_ps(ep->row_bias[i]);
      lo = _mm256_add_ps(lo, rb);
      hi = _mm256_add_ps(hi, rb);
    }
    if (ep->col_bias) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(ep->col_bias));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(ep->col_bias + 8));
    }
    if (ep->gelu) {
      lo = detail::gelu_approx<detail::v8sf, detail::v8si, true>(detail::Lanes<detail::v8sf>{lo}).v;
      hi = detail::gelu_approx<detail::v8sf, detail::v8si, true>(detail::Lanes<detail::v8sf>{hi}).v;
    }
    if (ep->col_scale) {
      lo = _mm256_mul_ps(lo, _mm256_loadu_ps(ep->col_scale));
      hi = _mm256_mul_ps(hi, _mm256_loadu_ps(ep->col_scale + 8));
    }
    if (ep->residual) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(ep->residual + i * ldc));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(ep->residual + i * ldc + 8));
    }
  }
  _mm256_storeu_ps(row, lo);
  _mm256_storeu_ps(row + 8, hi);
}

__attribute__((target("avx2,fma"))) void micro_kernel_avx2(int64_t kc, const float* a, int64_t a_row,
                                                            int64_t a_step, const float* b, float* c, int64_t ldc,
                                                            float alpha, bool accumulate, const TileEpilogue* ep) {
  // The C tile is usually not in cache (it is written once when K is small): start fetching it now.
  for (int i = 0; i < kAvx2Mr; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
  }
  const float* a0 = a;
  const float* a1 = a + a_row;
  const float* a2 = a + 2 * a_row;
  const float* a3 = a + 3 * a_row;
  const float* a4 = a + 4 * a_row;
  const float* a5 = a + 5 * a_row;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t p = 0, off = 0; p < kc; ++p, off += a_step) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a0 + off);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a1 + off);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a2 + off);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a3 + off);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a4 + off);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a5 + off);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    b += kGemmNr;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  store_row_avx2(c + 0 * ldc, c00, c01, va, accumulate, ep, 0, ldc);
  store_row_avx2(c + 1 * ldc, c10, c11, va, accumulate, ep, 1, ldc);
  store_row_avx2(c + 2 * ldc, c20, c21, va, accumulate, ep, 2, ldc);
  store_row_avx2(c + 3 * ldc, c30, c31, va, accumulate, ep, 3, ldc);
  store_row_avx2(c + 4 * ldc, c40, c41, va, accumulate, ep, 4, ldc);
  store_row_avx2(c + 5 * ldc, c50, c51, va, accumulate, ep, 5, ldc);
}

}  // namespace detrq::runtime::kernels::gemm_detail
