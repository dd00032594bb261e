// Int8 GEMM for Q/DQ MatMuls: y[m, n] = a_scale * w_scale[n] * sum_k (a[m, k] - a_zero_point) * w[k, n],
// int8 weights packed once per ISA, int32 accumulation, float epilogue (internal to runtime).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"
#include "detrq/core/thread_pool.h"
#include "detrq/runtime/cpu_target.h"
#include "runtime/kernels/gemm/gemm.h"

namespace detrq::runtime::kernels {

// Instruction sets the int8 GEMM can use; kReference is plain C++ and always available.
// kAvx2 widens both operands to int16 (vpmaddwd, two k per lane); kAvx2S8 keeps them as signed bytes
// (vpsignb moves each activation's sign onto its weight, vpmaddubsw multiplies |a| by the signed weight,
// four k per lane), which is exact only for weights in [-127, 127]: packing weights that hold a -128 for
// kAvx2S8 packs them for kAvx2 instead (PackedInt8Weights::isa() says which), so both give the same sums.
// kAvxVnni is vpdpbusd on 256-bit registers (AVX-VNNI, Intel's cores since Alder Lake and Sapphire Rapids,
// without AVX-512 on client parts): u8 activations as VNNI, in AVX2-S8's layout of 8 columns, any weight.
enum class Int8Isa { kReference, kAvx2, kAvx512Vnni, kAvx2S8, kAvxVnni };

const char* int8_isa_name(Int8Isa isa);
// The CPU features an ISA's code needs (AVX2: avx2; AVX-VNNI: avx2, avxvnni; VNNI: avx512f, avx512bw,
// avx512vnni; reference: none).
CpuTarget int8_isa_features(Int8Isa isa);
// Every ISA `target` has, reference first; the best one last (kAvx2S8 after kAvx2, kAvxVnni after both,
// kAvx512Vnni last).
std::vector<Int8Isa> available_int8_isas(const CpuTarget& target);
Int8Isa best_int8_isa(const CpuTarget& target);

// Weights [K, N] (row-major int8, zero point 0) in the layout `isa` reads, with the column sums that
// compensate the activation zero point exactly. Packing is plain data layout: `target` (what the weights
// are packed for, which may be wider than this CPU) must have the ISA, else kUnsupported; running
// int8_gemm needs a CPU that has it. isa() is the ISA packed for: `isa`, or kAvx2 where kAvx2S8 was asked
// for weights it cannot hold exactly (a -128).
struct Int8GemmOutput;

class PackedInt8Weights {
 public:
  PackedInt8Weights() = default;
  PackedInt8Weights(const int8_t* w, int64_t k, int64_t n, Int8Isa isa, const CpuTarget& target);

  // Bytes pack_into needs for a [k, n] weight packed for `isa`; and packing into that memory (64-byte
  // aligned, kept alive and unchanged by the caller while the weights are used), viewed, not copied:
  // what packs per run (attention's K and V, into the kernel's arena scratch) without allocating.
  static std::size_t packed_bytes(int64_t k, int64_t n, Int8Isa isa);
  // w may be strided: element (kk, nn) at w[kk * row_stride + nn * col_stride] (row_stride 0: n), as
  // attention's K and V are when their Transposes were absorbed.
  static PackedInt8Weights pack_into(const int8_t* w, int64_t k, int64_t n, Int8Isa isa, const CpuTarget& target,
                                     std::byte* memory, int64_t row_stride = 0, int64_t col_stride = 1);

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  Int8Isa isa() const { return isa_; }
  // Bytes of activation scratch int8_gemm needs for m rows; and at most that for any [k, n] weight
  // packed for `isa` (before packing: kAvx2S8's int16 fallback included).
  std::size_t scratch_bytes(int64_t m) const;
  static std::size_t scratch_bytes_bound(int64_t m, int64_t k, int64_t n, Int8Isa isa);

  // For engine files: the packed form as tensors that view this object (the packed codes, then the
  // column sums), under a layout name that changes with the format and names the ISA it needs; and
  // back (copied), or nullopt when the blobs do not fit a [k, n] weight packed for `isa` or `target`
  // lacks the ISA. isa_of_layout() is the ISA a layout name was written for (nullopt: not an int8 GEMM's).
  static std::string layout(Int8Isa isa);
  static std::optional<Int8Isa> isa_of_layout(const std::string& layout);
  std::vector<core::Tensor> blobs() const;
  static std::optional<PackedInt8Weights> from_blobs(const std::vector<core::Tensor>& blobs, int64_t k, int64_t n,
                                                     Int8Isa isa, const CpuTarget& target);
  // As from_blobs, but viewing the blobs (kept alive here) instead of copying them: an engine file's
  // mapping then serves the weights with no second copy in memory.
  static std::optional<PackedInt8Weights> view_blobs(const std::vector<core::Tensor>& blobs, int64_t k, int64_t n,
                                                     Int8Isa isa, const CpuTarget& target);

 private:
  // The shape of a [k, n] weight packed for `isa`, when `blobs` hold exactly that (sizes, types, and no -128
  // in AVX2-S8 codes) and `target` has the ISA; nothing is copied.
  static std::optional<PackedInt8Weights> checked_shape(const std::vector<core::Tensor>& blobs, int64_t k, int64_t n,
                                                        Int8Isa isa, const CpuTarget& target);
  // Checks the target, picks the ISA actually packed (kAvx2S8 -> kAvx2 for weights holding a -128), and
  // sets the shape; then fill() writes the codes (into bytes, or words for kAvx2) and the column sums.
  struct Strides {
    int64_t row, col;
  };
  void shape_for(const int8_t* w, int64_t k, int64_t n, Int8Isa isa, const CpuTarget& target, Strides st);
  void fill(const int8_t* w, int8_t* bytes, int16_t* words, int32_t* sums, Strides st) const;
  friend struct Int8GemmDriver;  // int8_gemm's pieces (int8_gemm.cpp)
  int64_t k_ = 0;
  int64_t n_ = 0;
  int64_t k_padded_ = 0;  // K rounded up to the ISA's group of k values (1, 2 or 4)
  int64_t n_padded_ = 0;  // N rounded up to the ISA's vector width
  Int8Isa isa_ = Int8Isa::kReference;
  std::vector<int8_t> bytes_;     // reference: w as given; VNNI: [N/16][K/4][16][4]; AVX2-S8: [N/8][K/4][8][4]
  std::vector<int16_t> words_;    // AVX2: [N/8][K/2][8][2] int16
  std::vector<int32_t> col_sums_;  // sum_k w[k, n], n_padded_ entries
  // Viewed instead (view_blobs): the blobs held, and where their codes and sums are.
  std::vector<core::Tensor> held_;
  const void* codes_view_ = nullptr;
  const int32_t* sums_view_ = nullptr;
  const int8_t* codes8() const { return codes_view_ ? static_cast<const int8_t*>(codes_view_) : bytes_.data(); }
  const int16_t* codes16() const { return codes_view_ ? static_cast<const int16_t*>(codes_view_) : words_.data(); }
  const int32_t* sums() const { return sums_view_ ? sums_view_ : col_sums_.data(); }
};

// Where int8_gemm's m x N results go and what happens to each finished tile first, while it is in
// cache: the float epilogue (bias, GELU, column scale, then the residual, laid out as the m x N output),
// then, with `quantize`, QuantizeLinear's arithmetic with one scale and zero point, so that y holds int8
// (out_signed) or uint8 codes instead of floats: the requantizing epilogue that keeps int8 layer to layer.
struct Int8GemmOutput {
  void* y = nullptr;
  GemmEpilogue epilogue{};
  bool quantize = false;
  bool out_signed = true;
  float out_scale = 1.0F;
  int32_t out_zero_point = 0;
  CpuTarget target = CpuTarget::host();  // what the epilogue's code may use (the Session's target)
};

// a: m rows of k int8 (a_signed) or uint8 values, row-major. w_scale: N values, or one when
// !w_per_channel. y: m x N floats. scratch: scratch_bytes(m) bytes, 64-byte aligned.
void int8_gemm(const PackedInt8Weights& w, const void* a, bool a_signed, int64_t m, int32_t a_zero_point,
               float a_scale, const float* w_scale, bool w_per_channel, float* y, void* scratch,
               core::ThreadPool& pool, int64_t lda = 0);
// The same product into `out` (its epilogue and optional requantization applied).
// lda: elements between consecutive rows of a (0: K, dense rows).
void int8_gemm(const PackedInt8Weights& w, const void* a, bool a_signed, int64_t m, int32_t a_zero_point,
               float a_scale, const float* w_scale, bool w_per_channel, const Int8GemmOutput& out, void* scratch,
               core::ThreadPool& pool, int64_t lda = 0);

}  // namespace detrq::runtime::kernels
