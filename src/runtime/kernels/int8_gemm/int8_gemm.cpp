// Int8 GEMM (see int8_gemm.h): a portable reference, two AVX2 paths (signed bytes with vpsignb and
// vpmaddubsw, which cannot saturate for weights in [-127, 127]; operands widened to int16 with vpmaddwd, for
// weights that hold a -128) and an AVX512-VNNI path (vpdpbusd on u8 activations), chosen per CPU.
#include "runtime/kernels/int8_gemm/int8_gemm.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "detrq/core/error.h"
#include "runtime/kernels/int8_gemm/int8_epilogue.h"
#include "runtime/kernels/int8_gemm/int8_tiles.h"
#include "runtime/kernels/quantization/requantize.h"

namespace detrq::runtime::kernels {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

int64_t k_group(Int8Isa isa) {
  return isa == Int8Isa::kReference ? 1 : isa == Int8Isa::kAvx2 ? 2 : 4;
}
int64_t lanes(Int8Isa isa) { return isa == Int8Isa::kReference ? 1 : isa == Int8Isa::kAvx512Vnni ? 16 : 8; }
// Rows of one tile (int8_tiles.h).
int64_t tile_rows(Int8Isa isa) {
  return isa == Int8Isa::kAvx512Vnni ? int8_detail::kVnniRows
         : isa == Int8Isa::kAvxVnni  ? int8_detail::kAvxVnniRows
                                     : int8_detail::kAvx2Rows;
}
// The activations are multiplied as unsigned bytes (s8 shifted by 128) by vpdpbusd.
bool unsigned_activations(Int8Isa isa) { return isa == Int8Isa::kAvx512Vnni || isa == Int8Isa::kAvxVnni; }
std::size_t align64(std::size_t v) { return (v + 63) / 64 * 64; }

using namespace int8_detail;

bool target_has(const CpuTarget& target, Int8Isa isa) { return target.has_all(int8_isa_features(isa)); }


// Applies out's epilogue to a finished rows x cols tile of floats (row stride ld) whose first element is
// (r0, c0) of the m x n result, and stores it into out.y as floats or, with out.quantize, as codes.
void finish_tile(const Int8GemmOutput& out, float* tile, int64_t ld, int64_t r0, int64_t rows, int64_t c0,
                 int64_t cols, int64_t n) {
  if (cols <= 32 && out.target.avx512f()) {
    finish_tile_avx512(out, tile, ld, r0, rows, c0, cols, n);
    return;
  }
  if (out.target.avx2_fma()) {
    finish_tile_avx2(out, tile, ld, r0, rows, c0, cols, n);
    return;
  }
  GemmEpilogue in_tile = out.epilogue;
  in_tile.residual = nullptr;  // laid out as y, not as the tile: added below
  if (in_tile.active()) apply_gemm_epilogue(in_tile, tile, ld, rows, cols, r0, c0, out.target);
  for (int64_t i = 0; i < rows; ++i) {
    float* row = tile + i * ld;
    const int64_t at = (r0 + i) * n + c0;
    if (const float* res = out.epilogue.residual) {
      for (int64_t j = 0; j < cols; ++j) row[j] += res[at + j];
    }
    if (out.quantize) {
      quantize_run(row, static_cast<uint8_t*>(out.y) + at, out.out_signed, cols, out.out_scale, out.out_zero_point,
                   out.target);
    } else {
      std::memcpy(static_cast<float*>(out.y) + at, row, static_cast<std::size_t>(cols) * sizeof(float));
    }
  }
}

}  // namespace

CpuTarget int8_isa_features(Int8Isa isa) {
  using F = CpuFeature;
  switch (isa) {
    case Int8Isa::kAvx512Vnni: return {F::kAvx512f, F::kAvx512bw, F::kAvx512vnni};
    case Int8Isa::kAvx2:
    case Int8Isa::kAvx2S8: return {F::kAvx2};
    case Int8Isa::kAvxVnni: return {F::kAvx2, F::kAvxVnni};
    default: return {};
  }
}

const char* int8_isa_name(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kAvx512Vnni: return "avx512vnni";
    case Int8Isa::kAvx2: return "avx2";
    case Int8Isa::kAvx2S8: return "avx2-s8";
    case Int8Isa::kAvxVnni: return "avx-vnni";
    default: return "reference";
  }
}

std::vector<Int8Isa> available_int8_isas(const CpuTarget& target) {
  std::vector<Int8Isa> out{Int8Isa::kReference};
  for (Int8Isa isa : {Int8Isa::kAvx2, Int8Isa::kAvx2S8, Int8Isa::kAvxVnni, Int8Isa::kAvx512Vnni}) {
    if (target_has(target, isa)) out.push_back(isa);
  }
  return out;
}

Int8Isa best_int8_isa(const CpuTarget& target) { return available_int8_isas(target).back(); }

std::optional<Int8Isa> PackedInt8Weights::isa_of_layout(const std::string& layout) {
  for (Int8Isa isa : {Int8Isa::kReference, Int8Isa::kAvx2, Int8Isa::kAvx2S8, Int8Isa::kAvxVnni, Int8Isa::kAvx512Vnni}) {
    if (layout == PackedInt8Weights::layout(isa)) return isa;
  }
  return std::nullopt;
}

std::string PackedInt8Weights::layout(Int8Isa isa) {
  // The reference layout is the plain weight and runs anywhere; the others name the CPU feature they need.
  return isa == Int8Isa::kReference ? "int8-gemm-w/1 reference"
                                    : std::string("int8-gemm-w/1 isa=") + int8_isa_name(isa);
}

std::vector<core::Tensor> PackedInt8Weights::blobs() const {
  if (codes_view_) return held_;
  std::vector<core::Tensor> out;
  if (isa_ == Int8Isa::kAvx2) {
    out.push_back(core::Tensor::view(core::DType::kInt16, {static_cast<int64_t>(words_.size())},
                                     const_cast<int16_t*>(words_.data())));
  } else {
    out.push_back(core::Tensor::view(core::DType::kInt8, {static_cast<int64_t>(bytes_.size())},
                                     const_cast<int8_t*>(bytes_.data())));
  }
  out.push_back(core::Tensor::view(core::DType::kInt32, {static_cast<int64_t>(col_sums_.size())},
                                   const_cast<int32_t*>(col_sums_.data())));
  return out;
}

std::optional<PackedInt8Weights> PackedInt8Weights::view_blobs(const std::vector<core::Tensor>& blobs, int64_t k,
                                                               int64_t n, Int8Isa isa, const CpuTarget& target) {
  std::optional<PackedInt8Weights> p = checked_shape(blobs, k, n, isa, target);
  if (!p) return p;
  p->held_ = blobs;
  p->codes_view_ = blobs[0].raw_data();
  p->sums_view_ = blobs[1].data<int32_t>();
  return p;
}

std::optional<PackedInt8Weights> PackedInt8Weights::from_blobs(const std::vector<core::Tensor>& blobs, int64_t k,
                                                               int64_t n, Int8Isa isa, const CpuTarget& target) {
  std::optional<PackedInt8Weights> p = checked_shape(blobs, k, n, isa, target);
  if (!p) return p;
  const core::Tensor& codes = blobs[0];
  const core::Tensor& sums = blobs[1];
  if (isa == Int8Isa::kAvx2) {
    p->words_.assign(codes.data<int16_t>(), codes.data<int16_t>() + codes.numel());
  } else {
    p->bytes_.assign(codes.data<int8_t>(), codes.data<int8_t>() + codes.numel());
  }
  p->col_sums_.assign(sums.data<int32_t>(), sums.data<int32_t>() + sums.numel());
  return p;
}

std::optional<PackedInt8Weights> PackedInt8Weights::checked_shape(const std::vector<core::Tensor>& blobs, int64_t k,
                                                                  int64_t n, Int8Isa isa, const CpuTarget& target) {
  if (k <= 0 || n <= 0 || blobs.size() != 2 || !target_has(target, isa)) {
    return std::nullopt;
  }
  PackedInt8Weights p;
  p.k_ = k;
  p.n_ = n;
  p.isa_ = isa;
  p.k_padded_ = round_up(k, k_group(isa));
  p.n_padded_ = round_up(n, lanes(isa) * (isa == Int8Isa::kReference ? 1 : kVectorsPerTile));
  const core::Tensor& codes = blobs[0];
  const core::Tensor& sums = blobs[1];
  const int64_t want = isa == Int8Isa::kReference ? k * n : p.n_padded_ * p.k_padded_;
  const core::DType code_type = isa == Int8Isa::kAvx2 ? core::DType::kInt16 : core::DType::kInt8;
  if (codes.dtype() != code_type || codes.numel() != want || sums.dtype() != core::DType::kInt32 ||
      sums.numel() != p.n_padded_) {
    return std::nullopt;
  }
  // A -128 in an AVX2-S8 panel would be multiplied wrong (its negation overflows): not a packing of ours.
  if (isa == Int8Isa::kAvx2S8) {
    const int8_t* c = codes.data<int8_t>();
    if (std::find(c, c + want, int8_t{-128}) != c + want) return std::nullopt;
  }
  return p;
}

PackedInt8Weights::PackedInt8Weights(const int8_t* w, int64_t k, int64_t n, Int8Isa isa, const CpuTarget& target) {
  shape_for(w, k, n, isa, target, Strides{n, 1});
  col_sums_.resize(static_cast<std::size_t>(n_padded_));
  if (isa_ == Int8Isa::kAvx2) {
    words_.resize(static_cast<std::size_t>(n_padded_ * k_padded_));
  } else {
    bytes_.resize(static_cast<std::size_t>(isa_ == Int8Isa::kReference ? k * n : n_padded_ * k_padded_));
  }
  fill(w, bytes_.data(), words_.data(), col_sums_.data(), Strides{n, 1});
}

std::size_t PackedInt8Weights::packed_bytes(int64_t k, int64_t n, Int8Isa isa) {
  // kAvx2S8 may fall back to kAvx2's int16 codes: room for those.
  const Int8Isa widest = isa == Int8Isa::kAvx2S8 ? Int8Isa::kAvx2 : isa;
  const int64_t kp = round_up(k, k_group(widest));
  const int64_t np = round_up(n, lanes(widest) * (widest == Int8Isa::kReference ? 1 : kVectorsPerTile));
  const std::size_t elem = widest == Int8Isa::kAvx2 ? 2 : 1;
  const std::size_t codes = widest == Int8Isa::kReference ? static_cast<std::size_t>(k * n)
                                                           : static_cast<std::size_t>(kp * np) * elem;
  // Sums for the widest padding of either layout (AVX2-S8 pads N as AVX2 does).
  return align64(codes) + align64(static_cast<std::size_t>(np) * sizeof(int32_t));
}

PackedInt8Weights PackedInt8Weights::pack_into(const int8_t* w, int64_t k, int64_t n, Int8Isa isa,
                                               const CpuTarget& target, std::byte* memory, int64_t row_stride,
                                               int64_t col_stride) {
  const Strides st{row_stride == 0 ? n : row_stride, col_stride};
  PackedInt8Weights p;
  p.shape_for(w, k, n, isa, target, st);
  const std::size_t codes = p.isa_ == Int8Isa::kReference ? static_cast<std::size_t>(k * n)
                                                           : static_cast<std::size_t>(p.k_padded_ * p.n_padded_) *
                                                                 (p.isa_ == Int8Isa::kAvx2 ? 2 : 1);
  auto* sums = reinterpret_cast<int32_t*>(memory + align64(codes));
  p.fill(w, reinterpret_cast<int8_t*>(memory), reinterpret_cast<int16_t*>(memory), sums, st);
  p.codes_view_ = memory;
  p.sums_view_ = sums;
  return p;
}

void PackedInt8Weights::shape_for(const int8_t* w, int64_t k, int64_t n, Int8Isa isa, const CpuTarget& target,
                                  Strides st) {
  DETRQ_ASSERT(k > 0 && n > 0, "int8 GEMM weights need K, N > 0");
  if (!target_has(target, isa)) {
    throw_unsupported("int8 GEMM",
                      std::string("the ") + int8_isa_name(isa) + " path needs CPU features " +
                          int8_isa_features(isa).lacking_from(target).to_string() + ", which the target (" +
                          target.to_string() + ") lacks",
                      "pack for an ISA of the target (best_int8_isa)");
  }
  if (isa == Int8Isa::kAvx2S8) {
    for (int64_t kk = 0; kk < k && isa == Int8Isa::kAvx2S8; ++kk) {
      for (int64_t nn = 0; nn < n; ++nn) {
        if (w[kk * st.row + nn * st.col] == int8_t{-128}) {
          isa = Int8Isa::kAvx2;  // the same features, exact for every weight
          break;
        }
      }
    }
  }
  k_ = k;
  n_ = n;
  isa_ = isa;
  k_padded_ = round_up(k, k_group(isa));
  n_padded_ = round_up(n, lanes(isa) * (isa == Int8Isa::kReference ? 1 : kVectorsPerTile));
}

void PackedInt8Weights::fill(const int8_t* w, int8_t* bytes, int16_t* words, int32_t* sums, Strides st) const {
  const int64_t k = k_, n = n_;
  const int64_t rs = st.row, cs = st.col;
  std::fill(sums, sums + n_padded_, 0);
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t nn = 0; nn < n; ++nn) sums[nn] += w[kk * rs + nn * cs];
  }
  auto at = [&](int64_t kk, int64_t nn) -> int8_t { return kk < k && nn < n ? w[kk * rs + nn * cs] : int8_t{0}; };
  const int64_t L = lanes(isa_);
  const int64_t G = k_group(isa_);
  const int64_t panels = n_padded_ / L;
  const int64_t groups = k_padded_ / G;
  // [N/L][K/G][L][G]: per panel of L columns, groups of G consecutive k values of each column (the
  // element type is what the ISA's multiply reads: int8 for VNNI and AVX2-S8, int16 for AVX2).
  // Blocks inside the weight read whole rows of L columns without bounds checks (attention packs its K
  // and V this way every run); the edge blocks pad with zeros.
  auto pack_panels = [&](auto* out) {
    for (int64_t p = 0; p < panels; ++p) {
      for (int64_t g = 0; g < groups; ++g) {
        auto* dst = out + (p * groups + g) * L * G;
        if ((g + 1) * G <= k && (p + 1) * L <= n) {
          for (int64_t j = 0; j < G; ++j) {
            const int8_t* src = w + (g * G + j) * rs + p * L * cs;
            if (cs == 1) {
              for (int64_t c = 0; c < L; ++c) dst[c * G + j] = src[c];
            } else {
              for (int64_t c = 0; c < L; ++c) dst[c * G + j] = src[c * cs];
            }
          }
          continue;
        }
        for (int64_t c = 0; c < L; ++c) {
          for (int64_t j = 0; j < G; ++j) dst[c * G + j] = at(g * G + j, p * L + c);
        }
      }
    }
  };
  switch (isa_) {
    case Int8Isa::kReference:
      for (int64_t kk = 0; kk < k; ++kk) {
        for (int64_t nn = 0; nn < n; ++nn) bytes[kk * n + nn] = w[kk * rs + nn * cs];
      }
      break;
    case Int8Isa::kAvx512Vnni:
    case Int8Isa::kAvx2S8:
    case Int8Isa::kAvxVnni:
      pack_panels(bytes);
      break;
    case Int8Isa::kAvx2:
      pack_panels(words);
      break;
  }
}

std::size_t PackedInt8Weights::scratch_bytes_bound(int64_t m, int64_t k, int64_t n, Int8Isa isa) {
  PackedInt8Weights shape;  // only the padded sizes matter
  shape.k_ = k;
  shape.n_ = n;
  std::size_t most = 0;
  for (Int8Isa packed : {isa, isa == Int8Isa::kAvx2S8 ? Int8Isa::kAvx2 : isa}) {
    shape.isa_ = packed;
    shape.k_padded_ = round_up(k, k_group(packed));
    shape.n_padded_ = round_up(n, lanes(packed) * (packed == Int8Isa::kReference ? 1 : kVectorsPerTile));
    most = std::max(most, shape.scratch_bytes(m));
  }
  return most;
}

std::size_t PackedInt8Weights::scratch_bytes(int64_t m) const {
  const std::size_t a_elem = isa_ == Int8Isa::kAvx2 ? 2 : isa_ == Int8Isa::kReference ? 0 : 1;
  const auto np = static_cast<std::size_t>(n_padded_);
  return align64(static_cast<std::size_t>(m * k_padded_) * a_elem) + align64(np * sizeof(float)) +
         align64(np * sizeof(int32_t));
}

void int8_gemm(const PackedInt8Weights& w, const void* a, bool a_signed, int64_t m, int32_t a_zero_point,
               float a_scale, const float* w_scale, bool w_per_channel, float* y, void* scratch,
               core::ThreadPool& pool, int64_t lda) {
  Int8GemmOutput out;
  out.y = y;
  int8_gemm(w, a, a_signed, m, a_zero_point, a_scale, w_scale, w_per_channel, out, scratch, pool, lda);
}

// The pieces of one int8_gemm call (a friend of PackedInt8Weights: it reads the packed layout).
struct Int8GemmDriver {
  const PackedInt8Weights& w;
  const uint8_t* a;  // reinterpreted per a_signed
  int64_t lda;       // elements between rows of a
  bool a_signed;
  int64_t m;
  int32_t a_zero_point;
  float a_scale;
  const float* w_scale;
  bool w_per_channel;
  const Int8GemmOutput& out;
  bool direct;  // tiles go straight to y when they are final floats, else through a buffer of the thread

  float column_scale(int64_t nn) const { return a_scale * w_scale[w_per_channel ? nn : 0]; }

  // The reference: rows of plain sums, in blocks of columns on the stack (no allocation).
  void reference(core::ThreadPool& pool) const {
    constexpr int64_t kBlock = 256;
    const int64_t K = w.k_, N = w.n_;
    auto* y = static_cast<float*>(out.y);
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, K * N));
    pool.parallel_for(m, grain, [&](int64_t begin, int64_t end) {
      int32_t acc[kBlock];
      float row_buf[kBlock];
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t c0 = 0; c0 < N; c0 += kBlock) {
          const int64_t cols = std::min(kBlock, N - c0);
          std::fill(acc, acc + cols, 0);
          for (int64_t kk = 0; kk < K; ++kk) {
            const int32_t av = (a_signed ? static_cast<int32_t>(static_cast<int8_t>(a[r * lda + kk]))
                                         : static_cast<int32_t>(a[r * lda + kk])) - a_zero_point;
            const int8_t* wrow = w.codes8() + kk * N + c0;
            for (int64_t j = 0; j < cols; ++j) acc[j] += av * wrow[j];
          }
          float* dst = direct ? y + r * N + c0 : row_buf;
          for (int64_t j = 0; j < cols; ++j) dst[j] = static_cast<float>(acc[j]) * column_scale(c0 + j);
          if (!direct) finish_tile(out, dst, cols, r, 1, c0, cols, N);
        }
      }
    });
  }

  // Activation rows padded to Kp, in the element type the ISA multiplies: both VNNIs multiply unsigned
  // bytes (s8 shifted by 128), AVX2-S8 signed ones (u8 shifted by -128), AVX2 int16.
  void pack_activations(std::byte* base, core::ThreadPool& pool) const {
    const int64_t K = w.k_, Kp = w.k_padded_;
    const Int8Isa isa = w.isa_;
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, Kp));
    pool.parallel_for(m, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const uint8_t* src = a + r * lda;
        if (isa == Int8Isa::kAvx2) {
          int16_t* dst = reinterpret_cast<int16_t*>(base) + r * Kp;
          for (int64_t kk = 0; kk < K; ++kk) dst[kk] = a_signed ? static_cast<int8_t>(src[kk]) : src[kk];
          std::fill(dst + K, dst + Kp, int16_t{0});
          continue;
        }
        uint8_t* dst = reinterpret_cast<uint8_t*>(base) + r * Kp;
        const bool flip = unsigned_activations(isa) ? a_signed : !a_signed;
        if (!flip) {
          std::memcpy(dst, src, static_cast<std::size_t>(K));
        } else if (isa == Int8Isa::kAvx512Vnni) {
          flip_sign_bits_avx512(src, dst, K);
        } else {
          flip_sign_bits_avx2(src, dst, K);
        }
        std::fill(dst + K, dst + Kp, uint8_t{0});
      }
    });
  }

  // The tiles over packed activations `base`, with per-column `scale` and zero-point correction `corr`.
  void run_tiles(const std::byte* base, const float* scale, const int32_t* corr, core::ThreadPool& pool) const {
    const int64_t N = w.n_, Kp = w.k_padded_, Np = w.n_padded_;
    const Int8Isa isa = w.isa_;
    const int64_t L = lanes(isa);
    const int64_t rows_per_tile = tile_rows(isa);
    const int64_t cols_per_tile = L * kVectorsPerTile;
    const int64_t row_tiles = (m + rows_per_tile - 1) / rows_per_tile;
    const int64_t col_tiles = Np / cols_per_tile;
    const int64_t panel_stride = Kp * L;  // elements between consecutive L-column panels
    const int64_t groups = Kp / k_group(isa);
    auto* y = static_cast<float*>(out.y);
    // Consecutive tasks share a weight panel, which stays in cache while the activations stream.
    const int64_t grain = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, rows_per_tile * cols_per_tile * Kp));
    pool.parallel_for(row_tiles * col_tiles, grain, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t r0 = (t % row_tiles) * rows_per_tile;
        const int64_t rows = std::min(rows_per_tile, m - r0);
        const int64_t c0 = (t / row_tiles) * cols_per_tile;
        const int64_t cols = std::min(cols_per_tile, N - c0);
        if (cols <= 0) continue;
        const auto shape = std::make_pair(static_cast<std::size_t>(rows - 1), static_cast<std::size_t>(cols > L ? 1 : 0));
        alignas(64) float buf[kVnniRows * kVectorsPerTile * 16];  // a whole tile of any ISA
        const int64_t ldt = direct ? N : cols_per_tile;
        float* yt = direct ? y + r0 * N + c0 : buf;
        const int64_t panel = (c0 / L) * panel_stride;
        if (isa == Int8Isa::kAvx512Vnni) {
          kVnniTiles[shape.first][shape.second](reinterpret_cast<const uint8_t*>(base) + r0 * Kp, Kp,
                                                w.codes8() + panel, panel_stride, groups, corr + c0, scale + c0, yt,
                                                ldt, cols);
        } else if (isa == Int8Isa::kAvxVnni) {
          kAvxVnniTiles[shape.first][shape.second](reinterpret_cast<const uint8_t*>(base) + r0 * Kp, Kp,
                                                   w.codes8() + panel, panel_stride, groups, corr + c0, scale + c0,
                                                   yt, ldt, cols);
        } else if (isa == Int8Isa::kAvx2S8) {
          kAvx2S8Tiles[shape.first][shape.second](reinterpret_cast<const int8_t*>(base) + r0 * Kp, Kp,
                                                  w.codes8() + panel, panel_stride, groups, corr + c0, scale + c0, yt,
                                                  ldt, cols);
        } else {
          kAvx2Tiles[shape.first][shape.second](reinterpret_cast<const int16_t*>(base) + r0 * Kp, Kp,
                                                w.codes16() + panel, panel_stride, groups, corr + c0, scale + c0, yt,
                                                ldt, cols);
        }
        if (!direct) finish_tile(out, buf, ldt, r0, rows, c0, cols, N);
      }
    });
  }

  void run(void* scratch, core::ThreadPool& pool) const {
    if (m <= 0) return;
    if (w.isa_ == Int8Isa::kReference) {
      reference(pool);
      return;
    }
    // Scratch: packed activations, then the per-column scale and zero-point correction.
    auto* base = static_cast<std::byte*>(scratch);
    const std::size_t a_bytes = align64(static_cast<std::size_t>(m * w.k_padded_) * (w.isa_ == Int8Isa::kAvx2 ? 2 : 1));
    auto* scale = reinterpret_cast<float*>(base + a_bytes);
    auto* corr =
        reinterpret_cast<int32_t*>(base + a_bytes + align64(static_cast<std::size_t>(w.n_padded_) * sizeof(float)));
    // The shift pack_activations applies, which the correction removes.
    const int32_t shift = unsigned_activations(w.isa_) && a_signed ? 128 : w.isa_ == Int8Isa::kAvx2S8 && !a_signed ? -128 : 0;
    for (int64_t nn = 0; nn < w.n_padded_; ++nn) {
      scale[nn] = nn < w.n_ ? column_scale(nn) : 0.0F;
      corr[nn] = (shift + a_zero_point) * w.sums()[nn];
    }
    pack_activations(base, pool);
    run_tiles(base, scale, corr, pool);
  }
};

void int8_gemm(const PackedInt8Weights& w, const void* a, bool a_signed, int64_t m, int32_t a_zero_point,
               float a_scale, const float* w_scale, bool w_per_channel, const Int8GemmOutput& out, void* scratch,
               core::ThreadPool& pool, int64_t lda) {
  const Int8GemmDriver driver{w,       static_cast<const uint8_t*>(a), lda == 0 ? w.k() : lda, a_signed,
                              m,       a_zero_point,                   a_scale,                w_scale,
                              w_per_channel, out,                      !out.quantize && !out.epilogue.active()};
  driver.run(scratch, pool);
}

}  // namespace detrq::runtime::kernels
