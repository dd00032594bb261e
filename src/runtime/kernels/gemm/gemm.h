// Matrix multiplication for the compute kernels: a plain reference for every dtype, and the fast
// float32 path (B packed into panels, A read in place, AVX-512, AVX2/FMA or portable micro-kernels chosen
// by the session's CpuTarget, a fused bias/activation epilogue, the session's thread pool over tiles).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "detrq/core/function_ref.h"
#include "detrq/core/thread_pool.h"
#include "detrq/runtime/cpu_target.h"
#include "detrq/runtime/packed_state.h"

namespace detrq::runtime::kernels {

// A read-only matrix operand: element (r, c) is at data[r * row_stride + c * col_stride], so a
// transposed operand is the same memory with the strides swapped.
template <typename T>
struct MatrixView {
  const T* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
  T at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// C[M,N] = alpha * A[M,K] * B[K,N] + (accumulate ? C : 0), straightforward loops, any arithmetic T.
template <typename T>
void gemm_reference(int64_t m, int64_t n, int64_t k, T alpha, MatrixView<T> a, MatrixView<T> b, bool accumulate,
                    T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (!accumulate) {
      for (int64_t j = 0; j < n; ++j) row[j] = T(0);
    }
    for (int64_t p = 0; p < k; ++p) {
      const T av = static_cast<T>(alpha * a.at(i, p));
      for (int64_t j = 0; j < n; ++j) row[j] += av * b.at(p, j);
    }
  }
}

inline constexpr int64_t kGemmNr = 16;    // columns of a micro-kernel tile (two AVX registers)
inline constexpr int64_t kGemmMaxMr = 6;  // rows of the largest tile a partial tile is computed in
inline constexpr int64_t kGemmKc = 256;  // depth of one packed block of weights (a B panel fits L1)
inline constexpr int64_t kGemmMaxKc = 320;  // the deepest block any packed operand uses

// The depth block for an operand packed every run (never stored, so free to follow K): K in the fewest
// blocks of at most kGemmMaxKc, evened out. Attention's K = 257 or 1028 then packs as 1 or 4 blocks of
// 257 instead of 256 + 1 or 4 x 256 + 4, whose last one-deep pass reloaded and stored every output tile.
inline int64_t depth_block_per_run(int64_t k) {
  const int64_t blocks = std::max<int64_t>(1, (k + kGemmMaxKc - 1) / kGemmMaxKc);
  return std::max<int64_t>(1, (k + blocks - 1) / blocks);
}

// A float32 B operand packed for the fast path: K split into blocks of kc (all but the last kc deep),
// each block into panels of kGemmNr columns stored k-major (zero-padded at the right edge). Constant
// weights are packed once at load with kc = kGemmKc (engine files store them in that layout);
// activations are packed per run, with depth_block_per_run(k), into storage kept between runs.
class PackedMatrixB {
 public:
  void pack(int64_t k, int64_t n, MatrixView<float> b, core::ThreadPool* pool = nullptr, int64_t kc = kGemmKc);
  // The same for a B that exists only as rows made on demand: row(p, out) writes row p (n floats) to out.
  // A convolution unfolds its input straight into the panels this way, without an unfolded copy first.
  // `row_buffers` holds one row_buffer_floats(n) buffer per thread of `pool` (one without a pool).
  void pack_rows_from(int64_t k, int64_t n, int64_t kc, core::ThreadPool* pool,
                      core::FunctionRef<void(int64_t, float*)> row, float* row_buffers);
  static int64_t row_buffer_floats(int64_t n);
  // Packs into `memory` (at least packed_size(k, n) floats for every later pack, 64-byte aligned, kept
  // alive by the caller) instead of storage of its own: operands packed per run into a kernel's arena
  // scratch, so that a run allocates nothing.
  void use_storage(float* memory, std::size_t floats) {
    storage_ = memory;
    storage_floats_ = floats;
  }
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int64_t kc() const { return kc_; }
  // The panel of columns [np*kGemmNr, ...) for depth block kb (kc_len rows of kGemmNr floats).
  const float* panel(int64_t kb, int64_t np) const {
    const int64_t kc_len = std::min(kc_, k_ - kb * kc_);
    return base() + kb * kc_ * n_padded_ + np * kc_len * kGemmNr;
  }

  // Engine files store the packed floats and hand them back: the layout name (changes whenever the
  // packing does), the floats a k x n operand packs into, this operand's, and adopting such floats
  // from elsewhere (a read-only mapping that `keep` holds) instead of packing.
  static std::string layout();
  static int64_t packed_size(int64_t k, int64_t n);
  std::span<const float> packed_data() const { return {base(), static_cast<std::size_t>(packed_size(k_, n_))}; }
  void adopt(int64_t k, int64_t n, const float* data, std::shared_ptr<const void> keep);
  // The same for a B that is dequantized int8 (y = (code - zero_point[c]) * scale[c] for column c): the
  // codes packed into the same panels (packed_size(k, n) int8), restored into float panels bit for bit
  // as DequantizeLinear and pack() compute them. Scale and zero point have one entry per column.
  static std::string layout_codes();
  static void pack_codes(int64_t k, int64_t n, MatrixView<int8_t> codes, int8_t* out);
  void unpack_codes(int64_t k, int64_t n, const int8_t* packed_codes, const float* scale, const int32_t* zero_point);

 private:
  void reset(int64_t k, int64_t n, int64_t kc);
  const float* base() const { return view_ ? view_ : storage_ ? storage_ : data_.data(); }
  float* writable() { return storage_ ? storage_ : data_.data(); }
  int64_t k_ = 0, n_ = 0, n_padded_ = 0, kc_ = kGemmKc;
  std::vector<float> data_;
  const float* view_ = nullptr;  // adopted storage, when set
  float* storage_ = nullptr;     // the caller's memory packed into (use_storage), when set
  std::size_t storage_floats_ = 0;
  std::shared_ptr<const void> keep_;
};

// The packed state of a k x n B that DequantizeLinear computes from int8 codes (row_major: codes [k, n],
// else [n, k]; per tensor, or per column along `column_axis` of the codes): empty when it does not fit.
PackedState packed_codes_state(const QuantizedConstant& q, int64_t k, int64_t n, int64_t column_axis, bool row_major);
// Restores `out` from a state of either layout (float panels, viewed; int8 panels, dequantized); false
// when the layout or the blobs do not fit a k x n B.
bool restore_packed_b(const PackedState& state, int64_t k, int64_t n, PackedMatrixB& out);

// What is applied to each finished output tile while it is still on registers, in this order: a bias per
// row, a bias per column, an activation, a scale per column, a residual. Fusing them saves passes over the
// output in memory (a transformer block's Add bias, GELU, LayerScale Mul and residual Add).
enum class GemmActivation { kNone, kGeluErf };
struct GemmEpilogue {
  const float* bias = nullptr;      // n values, added to every row; nullptr: none
  GemmActivation activation = GemmActivation::kNone;
  const float* row_bias = nullptr;  // m values, one added to each row (a convolution's bias per channel)
  const float* col_scale = nullptr;  // n values, multiplying each column after the activation
  // Added last: laid out as C (element (i, j) at residual[i * ldc + j]); must not overlap C.
  const float* residual = nullptr;
  bool active() const {
    return bias != nullptr || row_bias != nullptr || activation != GemmActivation::kNone || col_scale != nullptr ||
           residual != nullptr;
  }
};

// One multiplication of a batch: C = alpha * A * B (+ C when accumulating), then the epilogue.
struct SgemmItem {
  MatrixView<float> a;
  const PackedMatrixB* b = nullptr;
  float* c = nullptr;
  GemmEpilogue epilogue{};
};

// Runs every item (all of shape M x N x K with B packed in the same depth blocks, output row stride ldc)
// over the pool's threads, with the best micro-kernel `target` has: the AVX-512 12 x 32 tile (AVX2 on the
// edges) where it has avx512f, avx2 and fma, the AVX2 6 x 16 tile where it has avx2 and fma, else portable.
// The packed panels are the same for all three.
void sgemm_packed(int64_t m, int64_t n, int64_t k, float alpha, bool accumulate, std::span<const SgemmItem> items,
                  int64_t ldc, core::ThreadPool* pool, const CpuTarget& target);

// Convenience: packs B and multiplies, for one-off products (tests, benchmarks, small cases).
void sgemm(int64_t m, int64_t n, int64_t k, float alpha, MatrixView<float> a, MatrixView<float> b, bool accumulate,
           float* c, int64_t ldc, core::ThreadPool* pool, const CpuTarget& target);

// Which micro-kernel sgemm_packed runs for `target` ("avx512", "avx2" or "portable"); tests and benches
// print it.
const char* sgemm_isa(const CpuTarget& target);
// Rows of that micro-kernel's tile: callers that split M themselves keep blocks a multiple of it.
int64_t sgemm_tile_rows(const CpuTarget& target);

// Applies the epilogue to rows x cols values of C (row stride ldc) whose first element is at (row0, col0).
void apply_gemm_epilogue(const GemmEpilogue& epilogue, float* c, int64_t ldc, int64_t rows, int64_t cols,
                         int64_t row0, int64_t col0, const CpuTarget& target);

}  // namespace detrq::runtime::kernels
