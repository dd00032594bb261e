// The float32 GEMM fast path: packing, tiling over the thread pool, and the micro-kernels.
#include "runtime/kernels/gemm/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

#include "runtime/kernels/elementwise/float_activations.h"
#include "runtime/kernels/gemm/gemm_micro_kernel.h"
#include "runtime/kernels/math/gelu_approx.h"

// gelu_approx on AVX vectors is always inlined into the micro-kernels built for them; g++ still warns at
// the end of the file that passing such vectors by value to code without AVX would change the ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace detrq::runtime::kernels {
namespace {

using namespace gemm_detail;

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
constexpr int64_t kGemmMaxMc = 96;  // rows of A one task covers at most

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
  if (storage_) {
    if (storage_floats_ < size) throw std::invalid_argument("sgemm: an operand larger than its packing storage");
  } else if (data_.size() < size) {
    data_.resize(size);
  }
}

int64_t PackedMatrixB::row_buffer_floats(int64_t n) { return (n + kGemmNr - 1) / kGemmNr * kGemmNr; }

void PackedMatrixB::pack_rows_from(int64_t k, int64_t n, int64_t kc_block, core::ThreadPool* pool,
                                   core::FunctionRef<void(int64_t, float*)> row, float* row_buffers) {
  reset(k, n, kc_block);
  const int64_t panels = n_padded_ / kGemmNr;
  auto rows = [&](int64_t begin, int64_t end, float* buffer) {
    for (int64_t p = begin; p < end; ++p) {
      row(p, buffer);
      std::fill(buffer + n, buffer + n_padded_, 0.0F);
      const int64_t kb = p / kc_;
      const int64_t kc_len = std::min(kc_, k - kb * kc_);
      float* out = writable() + kb * kc_ * n_padded_ + (p - kb * kc_) * kGemmNr;
      for (int64_t np = 0; np < panels; ++np) {
        std::memcpy(out + np * kc_len * kGemmNr, buffer + np * kGemmNr, kGemmNr * sizeof(float));
      }
    }
  };
  if (!pool || pool->size() == 1) {
    rows(0, k, row_buffers);
    return;
  }
  // One chunk per thread slot, each with its own row buffer, taking 8 rows at a time.
  std::atomic<int64_t> next{0};
  pool->parallel_for(pool->size(), 1, [&](int64_t slot, int64_t) {
    float* buffer = row_buffers + slot * n_padded_;
    for (int64_t p = next.fetch_add(8); p < k; p = next.fetch_add(8)) rows(p, std::min(k, p + 8), buffer);
  });
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
      float* out = writable() + k0 * n_padded_ + np * kc * kGemmNr;
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
      float* out = writable() + k0 * n_padded_;
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
    if (by_rows) {
      pool->parallel_for(tasks, 1, pack_rows);
    } else {
      pool->parallel_for(tasks, 4, pack_panels);
    }
  } else if (by_rows) {
    pack_rows(0, tasks);
  } else {
    pack_panels(0, tasks);
  }
}

namespace {

// How sgemm_packed splits its work: tasks of (item, row block, column chunk).
struct GemmTiling {
  int64_t mc = 0;               // rows per task
  int64_t m_tiles = 0, n_tiles = 0;
  int64_t panels_per_tile = 0;  // B panels per column chunk
  int64_t tasks = 0;
};

// Column chunks of at most 32 panels keep the B panels of one task in L2; row tiles of up to 96 rows keep
// the A block there too. Tiles shrink until every thread has several tasks: columns first (down to 4
// panels), since each B panel serves every row tile of its task (with 4-tile tasks, a 1x1 convolution's
// 256 x 1024 x 1536 product ran at two thirds of the rate), then rows.
GemmTiling plan_tiling(int64_t m, int64_t n, int64_t batch, int threads, const MicroKernelInfo& kernel) {
  const int64_t n_panels = (n + kGemmNr - 1) / kGemmNr;
  // Row blocks are whole tiles of either kernel, and a wide kernel's column chunks whole pairs of panels.
  const int64_t block_mr = kernel.wide ? kernel.wide_mr : kernel.mr;
  const int64_t pair = kernel.wide ? 2 : 1;
  const int64_t mc_max = std::max<int64_t>(1, kGemmMaxMc / block_mr) * block_mr;
  GemmTiling t;
  t.mc = mc_max;
  // Enough tasks that handing them out one by one leaves the threads at most a small tile apart.
  const int64_t wanted = 8 * static_cast<int64_t>(threads);
  const int64_t m_tiles_max = (m + mc_max - 1) / mc_max;
  t.n_tiles = (n_panels + 31) / 32;
  while (t.n_tiles < n_panels && (n_panels + t.n_tiles - 1) / t.n_tiles > 4 &&
         batch * t.n_tiles * m_tiles_max < wanted) {
    ++t.n_tiles;
  }
  t.panels_per_tile = ((n_panels + t.n_tiles - 1) / t.n_tiles + pair - 1) / pair * pair;
  t.n_tiles = (n_panels + t.panels_per_tile - 1) / t.panels_per_tile;
  while (t.mc > 4 * block_mr && batch * t.n_tiles * ((m + t.mc - 1) / t.mc) < wanted) t.mc -= block_mr;
  t.m_tiles = (m + t.mc - 1) / t.mc;
  t.tasks = batch * t.m_tiles * t.n_tiles;
  return t;
}

// One sgemm_packed call: its operands, kernel and tiling, and one task's work.
struct SgemmDriver {
  int64_t m, n, k;
  float alpha;
  bool accumulate;
  std::span<const SgemmItem> items;
  int64_t ldc;
  const MicroKernelInfo& kernel;
  const GemmTiling& tiling;
  int64_t depth;  // of every item's B blocks

  // The row block [row0, row0 + rows) x panels [np0, np1) of one item, depth block `kb`; A rows not read
  // in place are packed into a_pack.
  void depth_block(const SgemmItem& item, int64_t row0, int64_t rows, int64_t np0, int64_t np1, int64_t kb,
                   int64_t wide_rows, int64_t full_rows, float* a_pack) const {
    const int64_t mr = kernel.mr;
    const int64_t k0 = kb * depth;
    const int64_t kc = std::min(depth, k - k0);
    if (full_rows < rows) pack_a(item.a, row0 + full_rows, rows - full_rows, k0, kc, mr, a_pack);
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
            tile(kernel, kc, a_pack + (r - full_rows) * kc, 1, mr, b, c + w * kGemmNr, ldc, tile_rows, nr, alpha,
                 acc, epilogue, row0 + r, col0 + w * kGemmNr);
          }
        }
        r += mr;
      }
      np += width;
    }
  }

  void task(int64_t t, float* a_pack) const {
    const int64_t per_item = tiling.m_tiles * tiling.n_tiles;
    const SgemmItem& item = items[static_cast<std::size_t>(t / per_item)];
    const int64_t mt = (t % per_item) / tiling.n_tiles;
    const int64_t nt = (t % per_item) % tiling.n_tiles;
    const bool direct = direct_a(item.a);
    const int64_t row0 = mt * tiling.mc;
    const int64_t rows = std::min(tiling.mc, m - row0);
    // In place, only whole tiles are read directly: the wide kernel's, then the narrow one's on the rows
    // left; a last partial tile is packed (zero-padded).
    const int64_t wide_rows = direct && kernel.wide ? rows / kernel.wide_mr * kernel.wide_mr : 0;
    const int64_t full_rows = direct ? wide_rows + (rows - wide_rows) / kernel.mr * kernel.mr : 0;
    const int64_t n_panels = (n + kGemmNr - 1) / kGemmNr;
    const int64_t np0 = nt * tiling.panels_per_tile;
    const int64_t np1 = std::min(n_panels, np0 + tiling.panels_per_tile);
    for (int64_t kb = 0; kb * depth < k; ++kb) depth_block(item, row0, rows, np0, np1, kb, wide_rows, full_rows, a_pack);
  }
};

}  // namespace

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
  if (depth > kGemmMaxKc) throw std::invalid_argument("sgemm: a depth block deeper than kGemmMaxKc");
  const MicroKernelInfo kernel = select_micro_kernel(target);
  const int threads = pool ? pool->size() : 1;
  const GemmTiling tiling = plan_tiling(m, n, static_cast<int64_t>(items.size()), threads, kernel);
  const SgemmDriver driver{m, n, k, alpha, accumulate, items, ldc, kernel, tiling, depth};
  // The rows of A a task packs, on the thread's stack (at most 96 x 320 floats: no allocation).
  auto run = [&](int64_t begin, int64_t end) {
    alignas(64) float a_pack[kGemmMaxMc * kGemmMaxKc];
    for (int64_t t = begin; t < end; ++t) driver.task(t, a_pack);
  };
  if (pool && tiling.tasks > 1 && threads > 1) {
    // One chunk per thread, each taking tasks from a shared counter: the pool's static chunks would
    // leave a thread idle for a whole chunk when the task count does not divide evenly.
    std::atomic<int64_t> next{0};
    pool->parallel_for(threads, 1, [&](int64_t, int64_t) {
      alignas(64) float a_pack[kGemmMaxMc * kGemmMaxKc];
      for (int64_t t = next.fetch_add(1); t < tiling.tasks; t = next.fetch_add(1)) driver.task(t, a_pack);
    });
  } else {
    run(0, tiling.tasks);
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
