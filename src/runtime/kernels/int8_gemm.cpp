// Int8 GEMM (see int8_gemm.h): a portable reference, two AVX2 paths (signed bytes with vpsignb and
// vpmaddubsw, which cannot saturate for weights in [-127, 127]; operands widened to int16 with vpmaddwd, for
// weights that hold a -128) and an AVX512-VNNI path (vpdpbusd on u8 activations), chosen per CPU.
#include "runtime/kernels/int8_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "detrq/core/error.h"
#include "runtime/kernels/int8_epilogue.h"
#include "runtime/kernels/requantize.h"

namespace detrq::runtime::kernels {
namespace {

constexpr int kVnniRows = 8;   // 8 rows x 2 vectors of 16 columns: 16 of the 32 zmm registers accumulate
constexpr int kAvx2Rows = 4;   // 4 rows x 2 vectors of 8 columns: 8 of the 16 ymm registers accumulate
// (both AVX2 paths)
constexpr int kVectorsPerTile = 2;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

int64_t k_group(Int8Isa isa) {
  return isa == Int8Isa::kAvx512Vnni || isa == Int8Isa::kAvx2S8 ? 4 : isa == Int8Isa::kAvx2 ? 2 : 1;
}
int64_t lanes(Int8Isa isa) {
  return isa == Int8Isa::kAvx512Vnni ? 16 : isa == Int8Isa::kAvx2 || isa == Int8Isa::kAvx2S8 ? 8 : 1;
}
std::size_t align64(std::size_t v) { return (v + 63) / 64 * 64; }

int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// ---- AVX512-VNNI: u8 activations (s8 shifted by 128) times s8 weights, four k values per lane.
template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile_vnni(const uint8_t* a, int64_t lda, const int8_t* w,
                                                                        int64_t panel_stride, int64_t groups,
                                                                        const int32_t* corr, const float* scale,
                                                                        float* y, int64_t ldy, int64_t cols) {
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m512i wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w + v * panel_stride + g * 64);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(load_i32(a + r * lda + g * 4));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, wv[v]);
    }
  }
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const int64_t left = cols - v * 16;
    if (left <= 0) break;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1U << left) - 1U);
    const __m512i c = _mm512_loadu_si512(corr + v * 16);
    const __m512 s = _mm512_loadu_ps(scale + v * 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      // The zero-masked conversion: g++ 12 warns about the undefined vector the plain one starts from.
      const __m512 f = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(__mmask16(0xFFFF), _mm512_sub_epi32(acc[r][v], c)), s);
      _mm512_mask_storeu_ps(y + r * ldy + v * 16, mask, f);
    }
  }
}

// The AVX2 tiles' store of 8 finished columns: a plain store where all 8 are inside the tile (every vector
// but the last one of a row), a masked one at the edge (vmaskmovps is slow on some CPUs: edges only).
__attribute__((target("avx2"))) inline void store8(float* y, __m256 f, int64_t left) {
  if (left >= 8) {
    _mm256_storeu_ps(y, f);
    return;
  }
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), lane), f);
}

// ---- AVX2, signed bytes: four k values per 32-bit lane, as VNNI's layout. vpmaddubsw multiplies unsigned
// by signed bytes and adds pairs into int16 with saturation; with |a| <= 128 on the unsigned side (vpsignb
// of a by itself) and sign(a) * w on the signed side (|w| <= 127, so the negation is exact), a pair is
// at most 2 * 128 * 127 = 32512 and never saturates; vpmaddwd by ones widens the pairs into int32.
template <int MR, int NV>
__attribute__((target("avx2"))) void tile_avx2_s8(const int8_t* a, int64_t lda, const int8_t* w, int64_t panel_stride,
                                                  int64_t groups, const int32_t* corr, const float* scale, float* y,
                                                  int64_t ldy, int64_t cols) {
  __m256i acc[MR][NV];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < groups; ++g) {
    __m256i wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      wv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * panel_stride + g * 32));
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(load_i32(a + r * lda + g * 4));
      const __m256i magnitude = _mm256_sign_epi8(av, av);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(wv[v], av));
        acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
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

// ---- AVX2: int16 activations times int16 weights, two k values per lane (vpmaddwd).
template <int MR, int NV>
__attribute__((target("avx2"))) void tile_avx2(const int16_t* a, int64_t lda, const int16_t* w, int64_t panel_stride,
                                               int64_t groups, const int32_t* corr, const float* scale, float* y,
                                               int64_t ldy, int64_t cols) {
  __m256i acc[MR][NV];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m256i wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      wv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * panel_stride + g * 16));
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(load_i32(a + r * lda + g * 2));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(av, wv[v]));
    }
  }
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

// dst = src ^ 0x80 per byte (s8 to the u8 that vpdpbusd multiplies), 64 bytes at a time; a profile of
// the all-INT8 model had the byte loop at 10% of the run.
__attribute__((target("avx512f,avx512bw"))) void flip_sign_bits(const uint8_t* src, uint8_t* dst, int64_t n) {
  const __m512i bit = _mm512_set1_epi8(static_cast<char>(0x80));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), bit));
  }
  if (i < n) {
    const __mmask64 m = (~0ULL) >> (64 - (n - i));
    _mm512_mask_storeu_epi8(dst + i, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + i), bit));
  }
}

// The AVX2 form of flip_sign_bits (u8 activations to the s8 that the AVX2-S8 path multiplies).
__attribute__((target("avx2"))) void flip_sign_bits_avx2(const uint8_t* src, uint8_t* dst, int64_t n) {
  const __m256i bit = _mm256_set1_epi8(static_cast<char>(0x80));
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_xor_si256(v, bit));
  }
  for (; i < n; ++i) dst[i] = static_cast<uint8_t>(src[i] ^ 0x80U);
}

using VnniTile = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, const int32_t*, const float*,
                          float*, int64_t, int64_t);
using Avx2S8Tile = void (*)(const int8_t*, int64_t, const int8_t*, int64_t, int64_t, const int32_t*, const float*,
                            float*, int64_t, int64_t);
using Avx2Tile = void (*)(const int16_t*, int64_t, const int16_t*, int64_t, int64_t, const int32_t*, const float*,
                          float*, int64_t, int64_t);

template <int... R>
constexpr std::array<std::array<VnniTile, 2>, sizeof...(R)> vnni_table(std::integer_sequence<int, R...>) {
  return {{{tile_vnni<R + 1, 1>, tile_vnni<R + 1, 2>}...}};
}
template <int... R>
constexpr std::array<std::array<Avx2Tile, 2>, sizeof...(R)> avx2_table(std::integer_sequence<int, R...>) {
  return {{{tile_avx2<R + 1, 1>, tile_avx2<R + 1, 2>}...}};
}
template <int... R>
constexpr std::array<std::array<Avx2S8Tile, 2>, sizeof...(R)> avx2_s8_table(std::integer_sequence<int, R...>) {
  return {{{tile_avx2_s8<R + 1, 1>, tile_avx2_s8<R + 1, 2>}...}};
}
// [rows - 1][vectors - 1]
constexpr auto kVnniTiles = vnni_table(std::make_integer_sequence<int, kVnniRows>());
constexpr auto kAvx2Tiles = avx2_table(std::make_integer_sequence<int, kAvx2Rows>());
constexpr auto kAvx2S8Tiles = avx2_s8_table(std::make_integer_sequence<int, kAvx2Rows>());

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
    default: return {};
  }
}

const char* int8_isa_name(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kAvx512Vnni: return "avx512vnni";
    case Int8Isa::kAvx2: return "avx2";
    case Int8Isa::kAvx2S8: return "avx2-s8";
    default: return "reference";
  }
}

std::vector<Int8Isa> available_int8_isas(const CpuTarget& target) {
  std::vector<Int8Isa> out{Int8Isa::kReference};
  for (Int8Isa isa : {Int8Isa::kAvx2, Int8Isa::kAvx2S8, Int8Isa::kAvx512Vnni}) {
    if (target_has(target, isa)) out.push_back(isa);
  }
  return out;
}

Int8Isa best_int8_isa(const CpuTarget& target) { return available_int8_isas(target).back(); }

std::optional<Int8Isa> PackedInt8Weights::isa_of_layout(const std::string& layout) {
  for (Int8Isa isa : {Int8Isa::kReference, Int8Isa::kAvx2, Int8Isa::kAvx2S8, Int8Isa::kAvx512Vnni}) {
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

PackedInt8Weights::PackedInt8Weights(const int8_t* w, int64_t k, int64_t n, Int8Isa isa, const CpuTarget& target)
    : k_(k), n_(n), isa_(isa) {
  DETRQ_ASSERT(k > 0 && n > 0, "int8 GEMM weights need K, N > 0");
  if (!target_has(target, isa)) {
    throw_unsupported("int8 GEMM",
                      std::string("the ") + int8_isa_name(isa) + " path needs CPU features " +
                          int8_isa_features(isa).lacking_from(target).to_string() + ", which the target (" +
                          target.to_string() + ") lacks",
                      "pack for an ISA of the target (best_int8_isa)");
  }
  if (isa == Int8Isa::kAvx2S8 && std::find(w, w + k * n, int8_t{-128}) != w + k * n) {
    isa = isa_ = Int8Isa::kAvx2;  // the same features, exact for every weight
  }
  k_padded_ = round_up(k, k_group(isa));
  n_padded_ = round_up(n, lanes(isa) * (isa == Int8Isa::kReference ? 1 : kVectorsPerTile));
  col_sums_.assign(static_cast<std::size_t>(n_padded_), 0);
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t nn = 0; nn < n; ++nn) col_sums_[static_cast<std::size_t>(nn)] += w[kk * n + nn];
  }
  auto at = [&](int64_t kk, int64_t nn) -> int8_t { return kk < k && nn < n ? w[kk * n + nn] : int8_t{0}; };
  const int64_t L = lanes(isa);
  const int64_t G = k_group(isa);
  const int64_t panels = n_padded_ / L;
  const int64_t groups = k_padded_ / G;
  // [N/L][K/G][L][G]: per panel of L columns, groups of G consecutive k values of each column (the
  // element type is what the ISA's multiply reads: int8 for VNNI and AVX2-S8, int16 for AVX2).
  auto pack_panels = [&](auto* out) {
    for (int64_t p = 0; p < panels; ++p) {
      for (int64_t g = 0; g < groups; ++g) {
        auto* dst = out + (p * groups + g) * L * G;
        for (int64_t c = 0; c < L; ++c) {
          for (int64_t j = 0; j < G; ++j) dst[c * G + j] = at(g * G + j, p * L + c);
        }
      }
    }
  };
  switch (isa) {
    case Int8Isa::kReference:
      bytes_.assign(w, w + k * n);
      break;
    case Int8Isa::kAvx512Vnni:
    case Int8Isa::kAvx2S8:
      bytes_.resize(static_cast<std::size_t>(n_padded_ * k_padded_));
      pack_panels(bytes_.data());
      break;
    case Int8Isa::kAvx2:
      words_.resize(static_cast<std::size_t>(n_padded_ * k_padded_));
      pack_panels(words_.data());
      break;
  }
}

std::size_t PackedInt8Weights::scratch_bytes(int64_t m) const {
  const std::size_t a_elem = isa_ == Int8Isa::kAvx2 ? 2 : isa_ == Int8Isa::kReference ? 0 : 1;
  const auto np = static_cast<std::size_t>(n_padded_);
  return align64(static_cast<std::size_t>(m * k_padded_) * a_elem) + align64(np * sizeof(float)) +
         align64(np * sizeof(int32_t));
}

void int8_gemm(const PackedInt8Weights& w, const void* a, bool a_signed, int64_t m, int32_t a_zero_point,
               float a_scale, const float* w_scale, bool w_per_channel, float* y, void* scratch,
               core::ThreadPool& pool) {
  Int8GemmOutput out;
  out.y = y;
  int8_gemm(w, a, a_signed, m, a_zero_point, a_scale, w_scale, w_per_channel, out, scratch, pool);
}

void int8_gemm(const PackedInt8Weights& w, const void* a, bool a_signed, int64_t m, int32_t a_zero_point,
               float a_scale, const float* w_scale, bool w_per_channel, const Int8GemmOutput& out, void* scratch,
               core::ThreadPool& pool) {
  // Tiles go straight to y when they are final floats, else through a buffer of the thread.
  const bool direct = !out.quantize && !out.epilogue.active();
  auto* y = static_cast<float*>(out.y);
  const int64_t K = w.k_;
  const int64_t N = w.n_;
  const int64_t Kp = w.k_padded_;
  const int64_t Np = w.n_padded_;
  if (m <= 0) return;
  const auto* a8 = static_cast<const uint8_t*>(a);  // reinterpreted per a_signed below

  if (w.isa_ == Int8Isa::kReference) {
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, K * N));
    pool.parallel_for(m, grain, [&](int64_t begin, int64_t end) {
      std::vector<int32_t> acc(static_cast<std::size_t>(N));
      std::vector<float> row_buf(direct ? 0 : static_cast<std::size_t>(N));
      for (int64_t r = begin; r < end; ++r) {
        std::fill(acc.begin(), acc.end(), 0);
        for (int64_t kk = 0; kk < K; ++kk) {
          const int32_t av = (a_signed ? static_cast<int32_t>(static_cast<int8_t>(a8[r * K + kk]))
                                       : static_cast<int32_t>(a8[r * K + kk])) - a_zero_point;
          const int8_t* wrow = w.codes8() + kk * N;
          for (int64_t nn = 0; nn < N; ++nn) acc[static_cast<std::size_t>(nn)] += av * wrow[nn];
        }
        float* dst = direct ? y + r * N : row_buf.data();
        for (int64_t nn = 0; nn < N; ++nn) {
          dst[nn] = static_cast<float>(acc[static_cast<std::size_t>(nn)]) * (a_scale * w_scale[w_per_channel ? nn : 0]);
        }
        if (!direct) finish_tile(out, dst, N, r, 1, 0, N, N);
      }
    });
    return;
  }

  // Scratch: packed activations, then the per-column scale and zero-point correction.
  auto* base = static_cast<std::byte*>(scratch);
  const bool vnni = w.isa_ == Int8Isa::kAvx512Vnni;
  const bool s8 = w.isa_ == Int8Isa::kAvx2S8;
  const std::size_t a_bytes = align64(static_cast<std::size_t>(m * Kp) * (vnni || s8 ? 1 : 2));
  auto* scale = reinterpret_cast<float*>(base + a_bytes);
  auto* corr = reinterpret_cast<int32_t*>(base + a_bytes + align64(static_cast<std::size_t>(Np) * sizeof(float)));
  // VNNI multiplies unsigned activations: s8 values are shifted by 128, which the correction removes;
  // AVX2-S8 multiplies signed ones: u8 values are shifted by -128.
  const int32_t shift = vnni && a_signed ? 128 : s8 && !a_signed ? -128 : 0;
  for (int64_t nn = 0; nn < Np; ++nn) {
    scale[nn] = nn < N ? a_scale * w_scale[w_per_channel ? nn : 0] : 0.0F;
    corr[nn] = (shift + a_zero_point) * w.sums()[nn];
  }
  const int64_t pack_grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, Kp));
  if (vnni) {
    auto* packed = reinterpret_cast<uint8_t*>(base);
    pool.parallel_for(m, pack_grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        uint8_t* dst = packed + r * Kp;
        const uint8_t* src = a8 + r * K;
        if (a_signed) {
          flip_sign_bits(src, dst, K);
        } else {
          std::memcpy(dst, src, static_cast<std::size_t>(K));
        }
        for (int64_t kk = K; kk < Kp; ++kk) dst[kk] = 0;
      }
    });
  } else if (s8) {
    auto* packed = reinterpret_cast<uint8_t*>(base);
    pool.parallel_for(m, pack_grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        uint8_t* dst = packed + r * Kp;
        const uint8_t* src = a8 + r * K;
        if (a_signed) {
          std::memcpy(dst, src, static_cast<std::size_t>(K));
        } else {
          flip_sign_bits_avx2(src, dst, K);
        }
        for (int64_t kk = K; kk < Kp; ++kk) dst[kk] = 0;
      }
    });
  } else {
    auto* packed = reinterpret_cast<int16_t*>(base);
    pool.parallel_for(m, pack_grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        int16_t* dst = packed + r * Kp;
        const uint8_t* src = a8 + r * K;
        if (a_signed) {
          for (int64_t kk = 0; kk < K; ++kk) dst[kk] = static_cast<int8_t>(src[kk]);
        } else {
          for (int64_t kk = 0; kk < K; ++kk) dst[kk] = src[kk];
        }
        for (int64_t kk = K; kk < Kp; ++kk) dst[kk] = 0;
      }
    });
  }

  const int64_t L = lanes(w.isa_);
  const int64_t G = k_group(w.isa_);
  const int64_t rows_per_tile = vnni ? kVnniRows : kAvx2Rows;
  const int64_t cols_per_tile = L * kVectorsPerTile;
  const int64_t row_tiles = (m + rows_per_tile - 1) / rows_per_tile;
  const int64_t col_tiles = Np / cols_per_tile;
  const int64_t panel_stride = Kp * L;  // elements between consecutive L-column panels
  const int64_t groups = Kp / G;
  // Consecutive tasks share a weight panel, which stays in cache while the activations stream.
  const int64_t grain = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, rows_per_tile * cols_per_tile * Kp));
  pool.parallel_for(row_tiles * col_tiles, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t ct = t / row_tiles;
      const int64_t rt = t % row_tiles;
      const int64_t r0 = rt * rows_per_tile;
      const int64_t rows = std::min(rows_per_tile, m - r0);
      const int64_t c0 = ct * cols_per_tile;
      const int64_t cols = std::min(cols_per_tile, N - c0);
      if (cols <= 0) continue;
      const int nv = cols > L ? 2 : 1;
      alignas(64) float buf[kVnniRows * kVectorsPerTile * 16];  // a whole tile of either ISA
      const int64_t ldt = direct ? N : cols_per_tile;
      float* yt = direct ? y + r0 * N + c0 : buf;
      if (vnni) {
        const uint8_t* at = reinterpret_cast<const uint8_t*>(base) + r0 * Kp;
        const int8_t* wt = w.codes8() + (c0 / L) * panel_stride;
        kVnniTiles[static_cast<std::size_t>(rows - 1)][static_cast<std::size_t>(nv - 1)](
            at, Kp, wt, panel_stride, groups, corr + c0, scale + c0, yt, ldt, cols);
      } else if (s8) {
        const int8_t* at = reinterpret_cast<const int8_t*>(base) + r0 * Kp;
        const int8_t* wt = w.codes8() + (c0 / L) * panel_stride;
        kAvx2S8Tiles[static_cast<std::size_t>(rows - 1)][static_cast<std::size_t>(nv - 1)](
            at, Kp, wt, panel_stride, groups, corr + c0, scale + c0, yt, ldt, cols);
      } else {
        const int16_t* at = reinterpret_cast<const int16_t*>(base) + r0 * Kp;
        const int16_t* wt = w.codes16() + (c0 / L) * panel_stride;
        kAvx2Tiles[static_cast<std::size_t>(rows - 1)][static_cast<std::size_t>(nv - 1)](
            at, Kp, wt, panel_stride, groups, corr + c0, scale + c0, yt, ldt, cols);
      }
      if (!direct) finish_tile(out, buf, ldt, r0, rows, c0, cols, N);
    }
  });
}

}  // namespace detrq::runtime::kernels
