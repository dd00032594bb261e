// QAttentionSoftmax (domain com.detrq, made only by qdq_attention_fusion): attention whose Q, K, V and
// probabilities are all quantized, in int8 arithmetic. Inputs: q codes [..., m, d], q_scale, q_zero_point,
// k codes [..., d, n], k_scale, k_zero_point (0), v codes [..., n, dv], v_scale, v_zero_point (0), each
// zero point one value of its codes' type and every scale one float32; batch axes equal (no broadcasting).
// Attributes: prob_scale, prob_zero_point, prob_signed (the probabilities' QuantizeLinear), perm_out (a
// Transpose of the output keeping the last axis last). Per block of rows of one batch entry: the scores
// by the int8 GEMM (K packed as its weight, once per run), softmax, the probabilities quantized to codes
// with QuantizeLinear's arithmetic, and their product with V by the int8 GEMM again: what DequantizeLinear
// -> MatMul -> Softmax -> QuantizeLinear -> DequantizeLinear -> MatMul computes, in cache.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "detrq/core/error.h"
#include "runtime/kernels/compute/permuted_operand.h"
#include "runtime/kernels/int8_gemm/int8_gemm.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/quantization/quantization.h"
#include "runtime/kernels/quantization/requantize.h"
#include "runtime/kernels/math/vector_math.h"

namespace detrq::runtime::kernels {
namespace {

class QAttentionSoftmax final : public Kernel {
  static constexpr int64_t kBlockRows = 64;

 public:
  explicit QAttentionSoftmax(const onnx::Node& node)
      : node_(node),
        prob_scale_(node.attr_float("prob_scale", 0.0F)),
        prob_zero_point_(static_cast<int32_t>(node.attr_int("prob_zero_point", 0))),
        prob_signed_(node.attr_int("prob_signed", 0) != 0) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    const std::string where = node_label(node_);
    if (!(prob_scale_ > 0.0F && std::isfinite(prob_scale_))) throw_invalid(where, "prob_scale must be positive");
    if (ctx.input_types.size() != 9) throw_invalid(where, "needs q, k, v codes, each with a scale and zero point");
    for (std::size_t i = 0; i < 9; i += 3) {
      const TensorType& codes = ctx.input_types[i];
      if ((codes.dtype != DType::kInt8 && codes.dtype != DType::kUInt8) || codes.shape.size() < 2 ||
          ctx.input_types[i + 1].dtype != DType::kFloat32 || core::shape_numel(ctx.input_types[i + 1].shape) != 1 ||
          ctx.input_types[i + 2].dtype != codes.dtype || core::shape_numel(ctx.input_types[i + 2].shape) != 1) {
        throw_invalid(where, "q, k and v must be int8/uint8 matrices with one float32 scale and zero point each");
      }
    }
    // Q, K and V as the products see them: read through perm_q, perm_k, perm_v (the Transposes the fusion
    // absorbed; Q's keeps its last axis, so that its rows stay contiguous).
    for (std::size_t i = 0; i < 3; ++i) {
      operands_[i] = permuted_input(node_, ctx.input_types[3 * i].shape, node_.attr_ints(std::string("perm_") + "qkv"[i]));
    }
    if (operands_[0].col_stride() != 1) throw_invalid(node_label(node_), "perm_q must keep the last axis last");
    const Shape& q = operands_[0].shape;
    const Shape& k = operands_[1].shape;
    const Shape& v = operands_[2].shape;
    const std::size_t r = q.size();
    if (k.size() != r || v.size() != r || !std::equal(q.begin(), q.end() - 2, k.begin()) ||
        !std::equal(q.begin(), q.end() - 2, v.begin()) || k[r - 2] != q[r - 1] || v[r - 2] != k[r - 1]) {
      throw_invalid(where, "q " + core::shape_to_string(q) + ", k " + core::shape_to_string(k) + ", v " +
                               core::shape_to_string(v) + " do not chain as [.., m, d] x [.., d, n] x [.., n, dv]");
    }
    m_ = q[r - 2], d_ = q[r - 1], n_ = k[r - 1], dv_ = v[r - 1];
    entries_ = core::shape_numel(Shape(q.begin(), q.end() - 2));
    isa_ = best_int8_isa(ctx.target);
    ks_.assign(static_cast<std::size_t>(entries_), PackedInt8Weights());
    vs_.assign(ks_.size(), PackedInt8Weights());
    for (PermutedOperand& o : operands_) o.offsets = batch_offsets(o, entries_);
    Shape logical(q.begin(), q.end() - 1);
    logical.push_back(dv_);
    const std::vector<int64_t> perm_out = node_.attr_ints("perm_out");
    output_ = permuted_output(node_, logical, perm_out);
    output_.offsets = batch_offsets(output_, entries_);
    return {TensorType{DType::kFloat32, stored_shape(logical, perm_out)}};
  }

  // Scratch: K and V of every entry packed (once per run), then per thread a block's scores,
  // probability codes, product and the GEMM's activation scratch.
  std::size_t scratch_bytes(int threads) const override {
    return static_cast<std::size_t>(entries_) * (k_bytes() + v_bytes()) +
           static_cast<std::size_t>(threads) * block_bytes();
  }

  void run(RunContext& ctx) override {
    if (ctx.outputs[0]->numel() == 0) return;
    if (zero_point(ctx, 5) != 0 || zero_point(ctx, 8) != 0) {
      throw_invalid(node_label(node_), "k and v need zero point 0 (they are the int8 GEMM's weights)");
    }
    const Isa isa = isa_;
    std::byte* packs = ctx.scratch.data();
    std::byte* blocks = packs + static_cast<std::size_t>(entries_) * (k_bytes() + v_bytes());
    const auto* k = static_cast<const int8_t*>(ctx.inputs[3]->raw_data());
    const auto* v = static_cast<const int8_t*>(ctx.inputs[6]->raw_data());
    // (uint8 K or V codes with zero point 0 cannot be negative: as int8 they would read wrong; refused.)
    if (ctx.inputs[3]->dtype() != DType::kInt8 || ctx.inputs[6]->dtype() != DType::kInt8) {
      throw_invalid(node_label(node_), "k and v codes must be int8");
    }
    ctx.pool.parallel_for(2 * entries_, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t e = i / 2;
        std::byte* at = packs + static_cast<std::size_t>(e) * (k_bytes() + v_bytes());
        const PermutedOperand& ko = operands_[1];
        const PermutedOperand& vo = operands_[2];
        if (i % 2 == 0) {
          ks_[static_cast<std::size_t>(e)] = PackedInt8Weights::pack_into(
              k + ko.offset(e), d_, n_, isa, ctx.target, at, ko.row_stride(), ko.col_stride());
        } else {
          vs_[static_cast<std::size_t>(e)] = PackedInt8Weights::pack_into(
              v + vo.offset(e), n_, dv_, isa, ctx.target, at + k_bytes(), vo.row_stride(), vo.col_stride());
        }
      }
    });
    const int64_t blocks_per_entry = (m_ + kBlockRows - 1) / kBlockRows;
    const int64_t tasks = entries_ * blocks_per_entry;
    std::atomic<int64_t> next{0};
    // One chunk per thread slot: its part of the scratch.
    ctx.pool.parallel_for(ctx.pool.size(), 1, [&](int64_t slot, int64_t) {
      std::byte* own = blocks + static_cast<std::size_t>(slot) * block_bytes();
      for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) {
        run_block(ctx, ks_[static_cast<std::size_t>(t / blocks_per_entry)],
                  vs_[static_cast<std::size_t>(t / blocks_per_entry)], t / blocks_per_entry,
                  (t % blocks_per_entry) * kBlockRows, own);
      }
    });
  }

 private:
  using Isa = Int8Isa;

  static int32_t zero_point(const RunContext& ctx, std::size_t i) {
    const Tensor& z = *ctx.inputs[i];
    return z.dtype() == DType::kInt8 ? z.data<int8_t>()[0] : z.data<uint8_t>()[0];
  }

  // Rows row0.. of entry e: scores, softmax, probability codes, their product with V, stored.
  static std::size_t align64(std::size_t v) { return (v + 63) / 64 * 64; }
  std::size_t k_bytes() const { return align64(PackedInt8Weights::packed_bytes(d_, n_, isa_)); }
  std::size_t v_bytes() const { return align64(PackedInt8Weights::packed_bytes(n_, dv_, isa_)); }
  // One thread's block: scores, probability codes, product and the GEMMs' activation scratch, sized and
  // carved by the same calls.
  struct Block {
    float* scores;
    uint8_t* codes;
    float* product;
    std::byte* gemm;
  };
  Block carve_block(ScratchLayout& layout) const {
    Block b{};
    b.scores = layout.take<float>(static_cast<std::size_t>(kBlockRows * n_));
    b.codes = layout.take<uint8_t>(static_cast<std::size_t>(kBlockRows * n_));
    b.product = layout.take<float>(static_cast<std::size_t>(kBlockRows * dv_));
    b.gemm = layout.take<std::byte>(std::max(PackedInt8Weights::scratch_bytes_bound(kBlockRows, d_, n_, isa_),
                                             PackedInt8Weights::scratch_bytes_bound(kBlockRows, n_, dv_, isa_)));
    return b;
  }
  std::size_t block_bytes() const {
    ScratchLayout layout;
    carve_block(layout);
    return layout.bytes();
  }

  void run_block(RunContext& ctx, const PackedInt8Weights& k, const PackedInt8Weights& v, int64_t e,
                 int64_t row0, std::byte* own) const {
    const int64_t rows = std::min(kBlockRows, m_ - row0);
    ScratchLayout layout(std::span<std::byte>(own, block_bytes()));
    const Block block = carve_block(layout);
    float* scores = block.scores;
    uint8_t* codes = block.codes;
    float* product = block.product;
    void* aligned = block.gemm;
    core::ThreadPool& serial = serial_;
    const Tensor& q = *ctx.inputs[0];
    const PermutedOperand& qo = operands_[0];
    const auto* q_rows = static_cast<const uint8_t*>(q.raw_data()) + qo.offset(e) + row0 * qo.row_stride();
    const float one = 1.0F;
    const float score_scale = ctx.inputs[1]->data<float>()[0] * ctx.inputs[4]->data<float>()[0];
    int8_gemm(k, q_rows, q.dtype() == DType::kInt8, rows, zero_point(ctx, 2), score_scale, &one, false,
              scores, aligned, serial, qo.row_stride());
    for (int64_t r = 0; r < rows; ++r) {
      float* row = scores + r * n_;
      const float sum = exp_minus_max_row(row, row, n_, ctx.target);
      // p / prob_scale = e * (1 / (sum * prob_scale)): one product per score instead of two divisions.
      quantize_run_by_product(row, codes + r * n_, prob_signed_, n_, 1.0F / (sum * prob_scale_),
                              prob_zero_point_, ctx.target);
    }
    const float out_scale = prob_scale_ * ctx.inputs[7]->data<float>()[0];
    int8_gemm(v, codes, prob_signed_, rows, prob_zero_point_, out_scale, &one, false, product, aligned,
              serial);
    float* out = ctx.outputs[0]->data<float>() + output_.offset(e) + row0 * output_.row_stride();
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out + r * output_.row_stride(), product + r * dv_, static_cast<std::size_t>(dv_) * sizeof(float));
    }
  }

  onnx::Node node_;
  float prob_scale_;
  int32_t prob_zero_point_;
  bool prob_signed_;
  int64_t m_ = 0, d_ = 0, n_ = 0, dv_ = 0, entries_ = 0;
  std::array<PermutedOperand, 3> operands_;  // Q, K, V (permuted_operand.h)
  PermutedOperand output_;                   // [..., m, dv] in the stored output
  Isa isa_ = Isa::kReference;
  // K and V of each entry, packed into the scratch each run (the objects only view it).
  std::vector<PackedInt8Weights> ks_, vs_;
  // What each thread's block products run on: the block is already one thread's share.
  mutable core::ThreadPool serial_{1};
};

}  // namespace

std::unique_ptr<Kernel> make_qattention_softmax(const onnx::Node& node, int opset) {
  (void)opset;
  return std::make_unique<QAttentionSoftmax>(node);
}

}  // namespace detrq::runtime::kernels
