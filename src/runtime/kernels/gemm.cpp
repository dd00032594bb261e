// The float32 GEMM fast path: packing, tiling over the thread pool, and the micro-kernels.
#include "runtime/kernels/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

#include "runtime/kernels/float_activations.h"
#include "runtime/kernels/gelu_approx.h"

// gelu_approx on AVX vectors is always inlined into the micro-kernels built for them; g++ still warns at
// the end of the file that passing such vectors by value to code without AVX would change the ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace detrq::runtime::kernels {
namespace {

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

// The tile kernel for every shape, and optionally a wider one that takes over where it fits (whole tiles
// of wide_mr rows and two panels, A in place), the rest falling back to `fn`.
struct MicroKernelInfo {
  MicroKernel fn;
  int64_t mr;
  const char* name;
  WideMicroKernel wide = nullptr;
  int64_t wide_mr = 0;
  const CpuTarget* target = nullptr;  // what chose it: the epilogues outside the kernel follow it too
  bool gelu_fma = false;              // gelu_uses_fma(*target), asked once rather than per tile
};

constexpr int64_t kPortableMr = 6;
constexpr int64_t kAvx2Mr = 6;
constexpr int64_t kAvx512WideMr = 12;

void micro_kernel_portable(int64_t kc, const float* a, int64_t a_row, int64_t a_step, const float* b, float* c,
                           int64_t ldc, float alpha, bool accumulate, const TileEpilogue* ep) {
  float acc[kPortableMr][kGemmNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < kPortableMr; ++i) {
      const float av = a[i * a_row + p * a_step];
      for (int64_t j = 0; j < kGemmNr; ++j) acc[i][j] += av * b[p * kGemmNr + j];
    }
  }
  for (int64_t i = 0; i < kPortableMr; ++i) {
    float* row = c + i * ldc;
    for (int64_t j = 0; j < kGemmNr; ++j) {
      float v = alpha * acc[i][j] + (accumulate ? row[j] : 0.0F);
      if (ep && ep->row_bias) v += ep->row_bias[i];
      if (ep && ep->col_bias) v += ep->col_bias[j];
      if (ep && ep->gelu) {
        v = ep->gelu_fma ? detail::gelu_approx<float, int32_t, true>(v) : detail::gelu_approx<float, int32_t>(v);
      }
      if (ep && ep->col_scale) v *= ep->col_scale[j];
      if (ep && ep->residual) v += ep->residual[i * ldc + j];
      row[j] = v;
    }
  }
}

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

// The wide AVX-512 tile (with the AVX2 one for edges) wherever the target has AVX-512: even on AMD Zen 4,
// which splits each 512-bit FMA in two, it saves loads and instructions (1-3% per product, 1.5-2% end to
// end on RF-DETR small, bench/RESULTS.md), where an earlier 14 x 16 AVX-512 tile had been slower than AVX2.
MicroKernelInfo select_micro_kernel(const CpuTarget& target) {
  const bool fma = gelu_uses_fma(target);
  if (target.avx512f()) {
    return {micro_kernel_avx2, kAvx2Mr, "avx512", micro_kernel_avx512_wide, kAvx512WideMr, &target, fma};
  }
  if (target.avx2_fma()) return {micro_kernel_avx2, kAvx2Mr, "avx2", nullptr, 0, &target, fma};
  return {micro_kernel_portable, kPortableMr, "portable", nullptr, 0, &target, fma};
}

// Packs rows [row0, row0+rows) x depth [k0, k0+kc) of A into panels of tile_mr rows, k-major, zero-padded.
void pack_a(MatrixView<float> a, int64_t row0, int64_t rows, int64_t k0, int64_t kc, int64_t tile_mr, float* out) {
  for (int64_t r = 0; r < rows; r += tile_mr) {
    const int64_t mr = std::min(tile_mr, rows - r);
    const float* base = a.data + (row0 + r) * a.row_stride + k0 * a.col_stride;
    if (a.col_stride == 1) {
      for (int64_t i = 0; i < mr; ++i) {
        const float* src = base + i * a.row_stride;
        for (int64_t p = 0; p < kc; ++p) out[p * tile_mr + i] = src[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t i = 0; i < mr; ++i) out[p * tile_mr + i] = base[i * a.row_stride + p * a.col_stride];
      }
    }
    for (int64_t i = mr; i < tile_mr; ++i) {
      for (int64_t p = 0; p < kc; ++p) out[p * tile_mr + i] = 0.0F;
    }
    out += kc * tile_mr;
  }
}

// A partial tile: the micro-kernel writes a scratch tile (its A rows must be a zero-padded packed panel:
// the kernel reads all of its rows), whose mr x nr corner is copied (added) into C; then the epilogue.
[[gnu::noinline]] void partial_tile(const MicroKernelInfo& kernel, int64_t kc, const float* a, int64_t a_row,
                                    int64_t a_step, const float* b, float* c, int64_t ldc, int64_t mr, int64_t nr,
                                    float alpha, bool accumulate, const GemmEpilogue* epilogue, int64_t row0,
                                    int64_t col0) {
  float scratch[kGemmMaxMr * kGemmNr];
  kernel.fn(kc, a, a_row, a_step, b, scratch, kGemmNr, alpha, false, nullptr);
  for (int64_t i = 0; i < mr; ++i) {
    for (int64_t j = 0; j < nr; ++j) {
      c[i * ldc + j] = scratch[i * kGemmNr + j] + (accumulate ? c[i * ldc + j] : 0.0F);
    }
  }
  if (epilogue) apply_gemm_epilogue(*epilogue, c, ldc, mr, nr, row0, col0, *kernel.target);
}

// The epilogue of the tile whose first element is (row0, col0) of C.
[[gnu::always_inline]] inline TileEpilogue tile_epilogue(const GemmEpilogue& e, int64_t row0, int64_t col0,
                                                         int64_t ldc, const MicroKernelInfo& kernel) {
  return TileEpilogue{e.row_bias ? e.row_bias + row0 : nullptr,        e.bias ? e.bias + col0 : nullptr,
                      e.activation == GemmActivation::kGeluErf,          kernel.gelu_fma,
                      e.col_scale ? e.col_scale + col0 : nullptr,       e.residual ? e.residual + row0 * ldc + col0 : nullptr};
}

// Runs the micro-kernel on a tile, then the epilogue when `epilogue` is set (this is the last depth
// block; the tile's first element is at (row0, col0) of C): a whole tile applies it on its registers,
// a partial one after the copy. Inlined into the tile loop: a call per tile showed in profiles.
[[gnu::always_inline]] inline void tile(const MicroKernelInfo& kernel, int64_t kc, const float* a, int64_t a_row,
                                        int64_t a_step, const float* b, float* c, int64_t ldc, int64_t mr, int64_t nr,
                                        float alpha, bool accumulate, const GemmEpilogue* epilogue, int64_t row0,
                                        int64_t col0) {
  if (mr != kernel.mr || nr != kGemmNr) {
    partial_tile(kernel, kc, a, a_row, a_step, b, c, ldc, mr, nr, alpha, accumulate, epilogue, row0, col0);
  } else if (!epilogue) {
    kernel.fn(kc, a, a_row, a_step, b, c, ldc, alpha, accumulate, nullptr);
  } else {
    const TileEpilogue ep = tile_epilogue(*epilogue, row0, col0, ldc, kernel);
    kernel.fn(kc, a, a_row, a_step, b, c, ldc, alpha, accumulate, &ep);
  }
}

// Reading A in place needs unit steps along K; transposed operands are packed. In place is faster on
// every measured shape: packing A cost up to half the time of a product with a deep K.
bool direct_a(MatrixView<float> a) { return a.col_stride == 1; }

}  // namespace

void PackedMatrixB::reset(int64_t k, int64_t n, int64_t kc_block) {
  if (kc_block < 1 || kc_block > kGemmMaxKc) throw std::invalid_argument("sgemm: depth block out of range");
  k_ = k;
  n_ = n;
  kc_ = kc_block;
  view_ = nullptr;
  keep_.reset();
  n_padded_ = (n + kGemmNr - 1) / kGemmNr * kGemmNr;
  // Grown, never shrunk: storage packed per run serves operands of several sizes, and growing within the
  // capacity would zero-fill what is about to be overwritten.
  const auto size = static_cast<std::size_t>(std::max<int64_t>(1, k * n_padded_));
  if (data_.size() < size) data_.resize(size);
}

void PackedMatrixB::pack_rows_from(int64_t k, int64_t n, int64_t kc_block, core::ThreadPool* pool,
                                   const std::function<void(int64_t, float*)>& row) {
  reset(k, n, kc_block);
  const int64_t panels = n_padded_ / kGemmNr;
  auto rows = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> buffer;
    buffer.resize(static_cast<std::size_t>(n_padded_));
    for (int64_t p = begin; p < end; ++p) {
      row(p, buffer.data());
      std::fill(buffer.begin() + n, buffer.begin() + n_padded_, 0.0F);
      const int64_t kb = p / kc_;
      const int64_t kc_len = std::min(kc_, k - kb * kc_);
      float* out = data_.data() + kb * kc_ * n_padded_ + (p - kb * kc_) * kGemmNr;
      for (int64_t np = 0; np < panels; ++np) {
        std::memcpy(out + np * kc_len * kGemmNr, buffer.data() + np * kGemmNr, kGemmNr * sizeof(float));
      }
    }
  };
  if (pool) {
    pool->parallel_for(k, 8, rows);
  } else {
    rows(0, k);
  }
}

void PackedMatrixB::pack(int64_t k, int64_t n, MatrixView<float> b, core::ThreadPool* pool, int64_t kc_block) {
  reset(k, n, kc_block);
  const int64_t panels = n_padded_ / kGemmNr;
  const int64_t k_blocks = (k + kc_ - 1) / kc_;
  auto pack_panels = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t k0 = (t / panels) * kc_;
      const int64_t np = t % panels;
      const int64_t kc = std::min(kc_, k - k0);
      float* out = data_.data() + k0 * n_padded_ + np * kc * kGemmNr;
      const int64_t col0 = np * kGemmNr;
      const int64_t nr = std::min(kGemmNr, n - col0);
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b.data + (k0 + p) * b.row_stride + col0 * b.col_stride;
        float* dst = out + p * kGemmNr;
        if (b.col_stride == 1) {
          for (int64_t j = 0; j < nr; ++j) dst[j] = src[j];  // 16 floats: a library call costs more
        } else {
          for (int64_t j = 0; j < nr; ++j) dst[j] = src[j * b.col_stride];
        }
        for (int64_t j = nr; j < kGemmNr; ++j) dst[j] = 0.0F;
      }
    }
  };
  // A row-major B is read a row at a time across a group of panels: panel by panel, each 64-byte piece
  // came from another row (pages apart for an unfolded convolution input), about half the speed.
  constexpr int64_t kGroup = 16;
  const int64_t groups = (panels + kGroup - 1) / kGroup;
  auto pack_rows = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t k0 = (t / groups) * kc_;
      const int64_t np0 = (t % groups) * kGroup;
      const int64_t np1 = std::min(panels, np0 + kGroup);
      const int64_t kc = std::min(kc_, k - k0);
      float* out = data_.data() + k0 * n_padded_;
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b.data + (k0 + p) * b.row_stride;
        for (int64_t np = np0; np < np1; ++np) {
          const int64_t col0 = np * kGemmNr;
          const int64_t nr = std::min(kGemmNr, n - col0);
          float* dst = out + np * kc * kGemmNr + p * kGemmNr;
          for (int64_t j = 0; j < nr; ++j) dst[j] = src[col0 + j];
          for (int64_t j = nr; j < kGemmNr; ++j) dst[j] = 0.0F;
        }
      }
    }
  };
  const bool by_rows = b.col_stride == 1;
  const int64_t tasks = k_blocks * (by_rows ? groups : panels);
  // Worth spreading only for large operands (a convolution's unfolded input).
  if (pool && k * n >= (1 << 18)) {
    pool->parallel_for(tasks, by_rows ? 1 : 4, by_rows ? std::function<void(int64_t, int64_t)>(pack_rows)
                                                        : std::function<void(int64_t, int64_t)>(pack_panels));
  } else if (by_rows) {
    pack_rows(0, tasks);
  } else {
    pack_panels(0, tasks);
  }
}

void sgemm_packed(int64_t m, int64_t n, int64_t k, float alpha, bool accumulate, std::span<const SgemmItem> items,
                  int64_t ldc, core::ThreadPool* pool, const CpuTarget& target) {
  if (m <= 0 || n <= 0 || items.empty()) return;
  if (k == 0) {
    for (const SgemmItem& item : items) {
      for (int64_t i = 0; i < m && !accumulate; ++i) std::fill_n(item.c + i * ldc, n, 0.0F);
      if (item.epilogue.active()) apply_gemm_epilogue(item.epilogue, item.c, ldc, m, n, 0, 0, target);
    }
    return;
  }
  const int64_t depth = items[0].b->kc();
  for (const SgemmItem& item : items) {
    if (item.b->kc() != depth) throw std::invalid_argument("sgemm: operands packed in different depth blocks");
  }
  const MicroKernelInfo kernel = select_micro_kernel(target);
  const int64_t batch = static_cast<int64_t>(items.size());
  const int threads = pool ? pool->size() : 1;
  const int64_t n_panels = (n + kGemmNr - 1) / kGemmNr;
  // Column chunks of at most 32 panels keep the B panels of one task in L2; row tiles of up to
  // 96 rows keep the A block there too. Tiles shrink until every thread has several tasks: columns
  // first (down to 4 panels), since each B panel serves every row tile of its task (with 4-tile tasks,
  // a 1x1 convolution's 256 x 1024 x 1536 product ran at two thirds of the rate), then rows.
  const int64_t mr = kernel.mr;
  // Row blocks are whole tiles of either kernel, and a wide kernel's column chunks whole pairs of panels.
  const int64_t block_mr = kernel.wide ? kernel.wide_mr : mr;
  const int64_t pair = kernel.wide ? 2 : 1;
  const int64_t mc_max = std::max<int64_t>(1, 96 / block_mr) * block_mr;
  int64_t mc = mc_max;
  // Enough tasks that handing them out one by one leaves the threads at most a small tile apart.
  const int64_t wanted = 8 * static_cast<int64_t>(threads);
  const int64_t m_tiles_max = (m + mc_max - 1) / mc_max;
  int64_t n_tiles = (n_panels + 31) / 32;
  while (n_tiles < n_panels && (n_panels + n_tiles - 1) / n_tiles > 4 && batch * n_tiles * m_tiles_max < wanted) {
    ++n_tiles;
  }
  const int64_t panels_per_tile = ((n_panels + n_tiles - 1) / n_tiles + pair - 1) / pair * pair;
  n_tiles = (n_panels + panels_per_tile - 1) / panels_per_tile;
  while (mc > 4 * block_mr && batch * n_tiles * ((m + mc - 1) / mc) < wanted) mc -= block_mr;
  const int64_t m_tiles = (m + mc - 1) / mc;
  const int64_t tasks = batch * m_tiles * n_tiles;

  auto run = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> a_pack;
    a_pack.resize(static_cast<std::size_t>(mc_max * depth));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t bi = t / (m_tiles * n_tiles);
      const int64_t rem = t % (m_tiles * n_tiles);
      const int64_t mt = rem / n_tiles;
      const int64_t nt = rem % n_tiles;
      const SgemmItem& item = items[static_cast<std::size_t>(bi)];
      const bool direct = direct_a(item.a);
      const int64_t row0 = mt * mc;
      const int64_t rows = std::min(mc, m - row0);
      // In place, only whole tiles are read directly: the wide kernel's, then the narrow one's on the rows
      // left; a last partial tile is packed (zero-padded).
      const int64_t wide_rows = direct && kernel.wide ? rows / kernel.wide_mr * kernel.wide_mr : 0;
      const int64_t full_rows = direct ? wide_rows + (rows - wide_rows) / mr * mr : 0;
      const int64_t np0 = nt * panels_per_tile;
      const int64_t np1 = std::min(n_panels, np0 + panels_per_tile);
      for (int64_t kb = 0; kb * depth < k; ++kb) {
        const int64_t k0 = kb * depth;
        const int64_t kc = std::min(depth, k - k0);
        if (full_rows < rows) pack_a(item.a, row0 + full_rows, rows - full_rows, k0, kc, mr, a_pack.data());
        const bool acc = accumulate || kb > 0;
        // The epilogue goes with the last depth block's stores, on registers.
        const GemmEpilogue* epilogue = k0 + kc >= k && item.epilogue.active() ? &item.epilogue : nullptr;
        for (int64_t np = np0; np < np1;) {
          // Two panels at once where the wide kernel has whole tiles and both panels are whole.
          const int64_t width = wide_rows > 0 && np + 1 < np1 && (np + 2) * kGemmNr <= n ? 2 : 1;
          const float* bp = item.b->panel(kb, np);
          const int64_t col0 = np * kGemmNr;
          // Weights come from memory in a model run (they do not fit the caches). With the 6 x 16 tile alone,
          // while a panel serves every row tile, the next one (the next columns, or the next depth block's
          // first) is fetched into L2, a share of its 64-byte rows per tile: this recovered most of the 3-7%
          // cold weights cost (gemm_bench's cold_weights). The wide tile's two sequential B streams need no
          // help: there the prefetches only waited on miss buffers (~1% slower end to end, paired runs).
          const bool next_in_block = np + 1 < np1;
          const float* next = kernel.wide ? nullptr
                              : next_in_block ? item.b->panel(kb, np + 1)
                              : k0 + kc < k  ? item.b->panel(kb + 1, np0)
                                             : nullptr;
          const int64_t next_lines = next ? std::min(depth, k - (next_in_block ? k0 : k0 + kc)) : 0;
          const int64_t row_tiles = (rows + mr - 1) / mr;  // of the 6 x 16 tile, the only one this serves
          const int64_t lines_per_tile = (next_lines + row_tiles - 1) / row_tiles;
          int64_t line = 0;
          for (int64_t r = 0; r < rows;) {
            for (const int64_t end = std::min(next_lines, line + lines_per_tile); line < end; ++line) {
              _mm_prefetch(reinterpret_cast<const char*>(next + line * kGemmNr), _MM_HINT_T1);
            }
            float* c = item.c + (row0 + r) * ldc + col0;
            if (r < wide_rows && width == 2) {
              const float* a = item.a.data + (row0 + r) * item.a.row_stride + k0;
              if (epilogue) {
                const TileEpilogue ep = tile_epilogue(*epilogue, row0 + r, col0, ldc, kernel);
                kernel.wide(kc, a, item.a.row_stride, bp, c, ldc, alpha, acc, &ep);
              } else {
                kernel.wide(kc, a, item.a.row_stride, bp, c, ldc, alpha, acc, nullptr);
              }
              r += kernel.wide_mr;
              continue;
            }
            const int64_t tile_rows = std::min(mr, rows - r);
            for (int64_t w = 0; w < width; ++w) {
              const int64_t nr = std::min(kGemmNr, n - col0 - w * kGemmNr);
              const float* b = bp + w * kc * kGemmNr;
              if (r < full_rows) {
                tile(kernel, kc, item.a.data + (row0 + r) * item.a.row_stride + k0, item.a.row_stride, 1, b,
                     c + w * kGemmNr, ldc, tile_rows, nr, alpha, acc, epilogue, row0 + r, col0 + w * kGemmNr);
              } else {
                tile(kernel, kc, a_pack.data() + (r - full_rows) * kc, 1, mr, b, c + w * kGemmNr, ldc, tile_rows,
                     nr, alpha, acc, epilogue, row0 + r, col0 + w * kGemmNr);
              }
            }
            r += mr;
          }
          np += width;
        }
      }
    }
  };
  if (pool && tasks > 1 && threads > 1) {
    // One chunk per thread, each taking tasks from a shared counter: the pool's static chunks would
    // leave a thread idle for a whole chunk when the task count does not divide evenly.
    std::atomic<int64_t> next{0};
    pool->parallel_for(threads, 1, [&](int64_t, int64_t) {
      for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) run(t, t + 1);
    });
  } else {
    run(0, tasks);
  }
}

void sgemm(int64_t m, int64_t n, int64_t k, float alpha, MatrixView<float> a, MatrixView<float> b, bool accumulate,
           float* c, int64_t ldc, core::ThreadPool* pool, const CpuTarget& target) {
  PackedMatrixB packed;
  packed.pack(k, n, b, nullptr, depth_block_per_run(k));
  const SgemmItem item{a, &packed, c};
  sgemm_packed(m, n, k, alpha, accumulate, std::span<const SgemmItem>(&item, 1), ldc, pool, target);
}

void apply_gemm_epilogue(const GemmEpilogue& epilogue, float* c, int64_t ldc, int64_t rows, int64_t cols,
                         int64_t row0, int64_t col0, const CpuTarget& target) {
  for (int64_t i = 0; i < rows; ++i) {
    float* row = c + i * ldc;
    if (epilogue.row_bias) {
      const float v = epilogue.row_bias[row0 + i];
      for (int64_t j = 0; j < cols; ++j) row[j] += v;
    }
    if (epilogue.bias) {
      const float* bias = epilogue.bias + col0;
      for (int64_t j = 0; j < cols; ++j) row[j] += bias[j];
    }
    if (epilogue.activation == GemmActivation::kGeluErf) gelu_erf_f32(row, row, cols, target);
    if (epilogue.col_scale) {
      const float* scale = epilogue.col_scale + col0;
      for (int64_t j = 0; j < cols; ++j) row[j] *= scale[j];
    }
    if (epilogue.residual) {
      const float* res = epilogue.residual + (row0 + i) * ldc + col0;
      for (int64_t j = 0; j < cols; ++j) row[j] += res[j];
    }
  }
}

const char* sgemm_isa(const CpuTarget& target) { return select_micro_kernel(target).name; }

int64_t sgemm_tile_rows(const CpuTarget& target) {
  const MicroKernelInfo kernel = select_micro_kernel(target);
  return kernel.wide ? kernel.wide_mr : kernel.mr;
}

std::string PackedMatrixB::layout() {
  // The panel geometry is all a packed B depends on: both micro-kernels read the same panels.
  return "sgemm-b-panels/1 f32 kc=" + std::to_string(kGemmKc) + " nr=" + std::to_string(kGemmNr);
}

int64_t PackedMatrixB::packed_size(int64_t k, int64_t n) { return k * ((n + kGemmNr - 1) / kGemmNr) * kGemmNr; }

void PackedMatrixB::adopt(int64_t k, int64_t n, const float* data, std::shared_ptr<const void> keep) {
  k_ = k;
  n_ = n;
  kc_ = kGemmKc;
  n_padded_ = (n + kGemmNr - 1) / kGemmNr * kGemmNr;
  data_ = {};
  view_ = data;
  keep_ = std::move(keep);
}

PackedState packed_codes_state(const QuantizedConstant& q, int64_t k, int64_t n, int64_t column_axis, bool row_major) {
  if (q.codes.dtype() != core::DType::kInt8 || q.codes.numel() != k * n || q.scale.dtype() != core::DType::kFloat32 ||
      (q.zero_point.defined() && q.zero_point.dtype() != core::DType::kInt8)) {
    return {};
  }
  const bool per_tensor = q.scale.numel() == 1;
  if (!per_tensor && (q.axis != column_axis || q.scale.numel() != n)) return {};
  core::Tensor scale = core::Tensor::empty(core::DType::kFloat32, {n});
  core::Tensor zero = core::Tensor::empty(core::DType::kInt32, {n});
  for (int64_t c = 0; c < n; ++c) {
    const int64_t from = per_tensor ? 0 : c;
    scale.data<float>()[c] = q.scale.data<float>()[from];
    zero.data<int32_t>()[c] = q.zero_point.defined() ? q.zero_point.data<int8_t>()[from] : 0;
  }
  core::Tensor codes = core::Tensor::empty(core::DType::kInt8, {PackedMatrixB::packed_size(k, n)});
  const MatrixView<int8_t> view =
      row_major ? MatrixView<int8_t>{q.codes.data<int8_t>(), n, 1} : MatrixView<int8_t>{q.codes.data<int8_t>(), 1, k};
  PackedMatrixB::pack_codes(k, n, view, codes.data<int8_t>());
  return {PackedMatrixB::layout_codes(), {codes, scale, zero}, {}};  // panels any x86-64 CPU reads
}

bool restore_packed_b(const PackedState& state, int64_t k, int64_t n, PackedMatrixB& out) {
  const int64_t size = PackedMatrixB::packed_size(k, n);
  if (state.layout == PackedMatrixB::layout()) {
    if (state.blobs.size() != 1 || state.blobs[0].dtype() != core::DType::kFloat32 ||
        state.blobs[0].shape() != core::Shape{size}) {
      return false;
    }
    out.adopt(k, n, state.blobs[0].data<float>(), std::make_shared<const core::Tensor>(state.blobs[0]));
    return true;
  }
  if (state.layout == PackedMatrixB::layout_codes()) {
    if (state.blobs.size() != 3 || state.blobs[0].dtype() != core::DType::kInt8 ||
        state.blobs[0].shape() != core::Shape{size} || state.blobs[1].dtype() != core::DType::kFloat32 ||
        state.blobs[1].shape() != core::Shape{n} || state.blobs[2].dtype() != core::DType::kInt32 ||
        state.blobs[2].shape() != core::Shape{n}) {
      return false;
    }
    out.unpack_codes(k, n, state.blobs[0].data<int8_t>(), state.blobs[1].data<float>(), state.blobs[2].data<int32_t>());
    return true;
  }
  return false;
}

std::string PackedMatrixB::layout_codes() {
  return "sgemm-b-panels-int8/1 kc=" + std::to_string(kGemmKc) + " nr=" + std::to_string(kGemmNr);
}

void PackedMatrixB::pack_codes(int64_t k, int64_t n, MatrixView<int8_t> codes, int8_t* out) {
  const int64_t panels = (n + kGemmNr - 1) / kGemmNr;
  const int64_t n_padded = panels * kGemmNr;
  for (int64_t k0 = 0; k0 < k; k0 += kGemmKc) {
    const int64_t kc = std::min(kGemmKc, k - k0);
    for (int64_t np = 0; np < panels; ++np) {
      int8_t* dst = out + k0 * n_padded + np * kc * kGemmNr;
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t j = 0; j < kGemmNr; ++j) {
          const int64_t col = np * kGemmNr + j;
          dst[p * kGemmNr + j] = col < n ? codes.at(k0 + p, col) : int8_t{0};
        }
      }
    }
  }
}

void PackedMatrixB::unpack_codes(int64_t k, int64_t n, const int8_t* packed_codes, const float* scale,
                                 const int32_t* zero_point) {
  k_ = k;
  n_ = n;
  kc_ = kGemmKc;
  n_padded_ = (n + kGemmNr - 1) / kGemmNr * kGemmNr;
  view_ = nullptr;
  keep_.reset();
  data_.resize(static_cast<std::size_t>(std::max<int64_t>(1, k * n_padded_)));
  const int64_t panels = n_padded_ / kGemmNr;
  for (int64_t k0 = 0; k0 < k; k0 += kGemmKc) {
    const int64_t kc = std::min(kGemmKc, k - k0);
    for (int64_t np = 0; np < panels; ++np) {
      const int64_t offset = k0 * n_padded_ + np * kc * kGemmNr;
      const int8_t* src = packed_codes + offset;
      float* dst = data_.data() + offset;
      float s[kGemmNr];
      int32_t z[kGemmNr];
      for (int64_t j = 0; j < kGemmNr; ++j) {
        const int64_t col = np * kGemmNr + j;
        s[j] = col < n ? scale[col] : 0.0F;
        z[j] = col < n ? zero_point[col] : 0;
      }
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t j = 0; j < kGemmNr; ++j) {
          // DequantizeLinear's expression; padding columns (code, zero point and scale 0) give 0.0F as in pack().
          dst[p * kGemmNr + j] = static_cast<float>(static_cast<int32_t>(src[p * kGemmNr + j]) - z[j]) * s[j];
        }
      }
    }
  }
}

}  // namespace detrq::runtime::kernels
