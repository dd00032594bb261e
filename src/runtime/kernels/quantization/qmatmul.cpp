// QMatMulF (domain com.detrq, made only by the Session's Q/DQ fusion): MatMul of a quantized
// activation (q_x, x_scale, x_zero_point) by a constant int8 weight [K, N] (w_q, w_scale per tensor or
// per output column, zero point 0), in int8 arithmetic; what DequantizeLinear -> MatMul <-
// DequantizeLinear computes, without materializing the float operands. Optional epilogue inputs (the
// nodes qdq_epilogue_fusion absorbed): 5 bias [N], then attribute activation "gelu_erf", 6 column scale
// [N], 7 residual (float, added last), and 8 y_scale, 9 y_zero_point: a following QuantizeLinear, so the
// output is int8 or uint8 codes instead of floats.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "detrq/core/error.h"
#include "runtime/kernels/int8_gemm/int8_gemm.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/quantization/requantize.h"
#include "runtime/kernels/quantization/quantization.h"

namespace detrq::runtime::kernels {
namespace {

class QMatMulF final : public Kernel {
 public:
  // `forced`: pack for that ISA; else for the best the session's target has.
  QMatMulF(const onnx::Node& node, std::optional<Int8Isa> forced) : node_(node), forced_(forced) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    const std::string where = node_label(node_);
    if (ctx.input_types.size() < 5 || ctx.input_types.size() > 10 || !ctx.input_present(0) || !ctx.input_present(1) || !ctx.input_present(3) ||
        !ctx.input_present(4)) {
      throw_invalid(where, "needs inputs q_x, x_scale, [x_zero_point], w_q, w_scale and at most the 5 epilogue inputs");
    }
    const TensorType& x = ctx.input_types[0];
    const TensorType& w = ctx.input_types[3];
    if (x.dtype != DType::kInt8 && x.dtype != DType::kUInt8) {
      throw_invalid(where, std::string("q_x has dtype ") + core::dtype_name(x.dtype), "int8 or uint8");
    }
    if (ctx.input_types[1].dtype != DType::kFloat32 || core::shape_numel(ctx.input_types[1].shape) != 1) {
      throw_invalid(where, "x_scale must be one float32");
    }
    if (ctx.input_present(2) &&
        (ctx.input_types[2].dtype != x.dtype || core::shape_numel(ctx.input_types[2].shape) != 1)) {
      throw_invalid(where, "x_zero_point must be one value of q_x's dtype");
    }
    if (w.dtype != DType::kInt8 || w.shape.size() != 2 || !ctx.input_values[3] || !ctx.input_values[4]) {
      throw_invalid(where, "w_q must be a constant int8 [K, N] matrix with a constant scale");
    }
    const TensorType& ws = ctx.input_types[4];
    const int64_t k = w.shape[0];
    const int64_t n = w.shape[1];
    const int64_t channels = core::shape_numel(ws.shape);
    if (ws.dtype != DType::kFloat32 || ws.shape.size() > 1 || (channels != 1 && channels != n)) {
      throw_invalid(where, "w_scale must be float32 with 1 or N = " + std::to_string(n) + " values");
    }
    if (x.shape.empty() || x.shape.back() != k) {
      throw_invalid(where, "q_x " + core::shape_to_string(x.shape) + " does not end in K = " + std::to_string(k));
    }
    Shape out = x.shape;
    if (out.size() == 1) {
      out = {n};
    } else {
      out.back() = n;
    }
    rows_ = core::shape_numel(x.shape) / std::max<int64_t>(k, 1);
    product_shape_ = out;
    const DType out_type = infer_epilogue(ctx, n, out);
    if (residual_broadcasts_) out = broadcast_shapes(node_, {out, ctx.input_types[7].shape});
    return {TensorType{out_type, out}};
  }

  void prepare(const InferContext& ctx) override {
    const Tensor& w = *ctx.input_values[3];
    if (w.numel() == 0) return;  // K or N is 0: run() writes nothing
    packed_ = PackedInt8Weights(w.data<int8_t>(), w.dim(0), w.dim(1), forced_ ? *forced_ : best_int8_isa(ctx.target),
                                ctx.target);
    isa_ = packed_.isa();  // what it packed for (AVX2-S8 asked for weights holding a -128 packs for AVX2)
    finish(ctx);
  }

  // Engine files: the packed int8 weight, restored as a view of the file's blobs (no copy, no packing). The
  // int8 weight itself stays a constant input (a quarter of the float size; the plan keeps it loadable).
  PackedState packed_state() const override {
    if (packed_.k() == 0) return {};
    return PackedState{PackedInt8Weights::layout(isa_), packed_.blobs(), int8_isa_features(isa_)};
  }

  // A state packed for any ISA the target has is adopted as it is (an engine built for AVX2 runs the AVX2
  // path on an AVX-512 machine: the weights it came from are not in the engine to pack again); one the
  // target lacks is refused, naming what is missing.
  bool restore_packed_state(const InferContext& ctx, const PackedState& state) override {
    const Shape& w = ctx.input_types.at(3).shape;
    const std::optional<Int8Isa> isa = PackedInt8Weights::isa_of_layout(state.layout);
    if (!isa || w.size() != 2 || !ctx.input_values.at(4)) return false;
    const CpuTarget lacking = int8_isa_features(*isa).lacking_from(ctx.target);
    if (!lacking.empty()) {
      throw_unsupported(node_label(node_),
                        "its packed weights (layout '" + state.layout + "') need CPU features " + lacking.to_string() +
                            ", which the target (" + ctx.target.to_string() + ") lacks",
                        "build the engine with `--cpu-features` naming only what this CPU has");
    }
    auto packed = PackedInt8Weights::view_blobs(state.blobs, w[0], w[1], *isa, ctx.target);  // no copy
    if (!packed) return false;
    isa_ = *isa;
    packed_ = std::move(*packed);
    finish(ctx);
    return true;
  }

  void run(RunContext& ctx) override {
    Tensor& y = *ctx.outputs[0];
    if (y.numel() == 0) return;
    const Tensor& x = *ctx.inputs[0];
    if (has_epilogue_) {
      run_with_epilogue(ctx);
      return;
    }
    if (packed_.k() == 0) {  // K == 0: an empty sum
      std::fill(y.data<float>(), y.data<float>() + y.numel(), 0.0F);
      return;
    }
    const bool is_signed = x.dtype() == DType::kInt8;
    int32_t zero_point = 0;
    if (ctx.inputs[2]) {
      zero_point = is_signed ? ctx.inputs[2]->data<int8_t>()[0] : ctx.inputs[2]->data<uint8_t>()[0];
    }
    int8_gemm(packed_, x.raw_data(), is_signed, rows_, zero_point, ctx.inputs[1]->data<float>()[0], w_scale_.data(),
              w_scale_.size() > 1, y.data<float>(), ctx.scratch.data(), ctx.pool);
  }

 private:
  // Checks inputs 5-9 and returns the output's dtype: float32, or the codes' type with y_scale.
  DType infer_epilogue(const InferContext& ctx, int64_t n, const Shape& out) {
    const std::string where = node_label(node_);
    auto vector_of_n = [&](std::size_t i, const char* what) {
      if (!ctx.input_present(i)) return false;
      if (ctx.input_types[i].dtype != DType::kFloat32 || ctx.input_types[i].shape != Shape{n} || !ctx.input_values[i]) {
        throw_invalid(where, std::string(what) + " must be a constant float32 [N]");
      }
      return true;
    };
    has_bias_ = vector_of_n(5, "bias");
    has_col_scale_ = vector_of_n(6, "the column scale");
    gelu_ = node_.attr_string("activation", "") == "gelu_erf";
    has_residual_ = ctx.input_present(7);
    if (has_residual_ && ctx.input_types[7].dtype != DType::kFloat32) throw_invalid(where, "the residual must be float32");
    residual_broadcasts_ = false;
    if (has_residual_ && ctx.input_types[7].shape != out) {
      // Rare (a residual of another shape): the product is finished in a buffer, then added broadcasting.
      residual_broadcasts_ = true;
      const Shape full = broadcast_shapes(node_, {out, ctx.input_types[7].shape});
      residual_plan_ = BroadcastPlan(full, {out, ctx.input_types[7].shape});
      full_numel_ = core::shape_numel(full);
      product_buf_ = Tensor::empty(DType::kFloat32, out);
      sum_buf_ = Tensor::empty(DType::kFloat32, {full_numel_});
    }
    quantize_ = ctx.input_present(8);
    has_epilogue_ = has_bias_ || has_col_scale_ || gelu_ || has_residual_ || quantize_;
    if (!quantize_) return DType::kFloat32;
    if (!ctx.input_present(9) || core::shape_numel(ctx.input_types[8].shape) != 1 ||
        core::shape_numel(ctx.input_types[9].shape) != 1 || ctx.input_types[8].dtype != DType::kFloat32 ||
        (ctx.input_types[9].dtype != DType::kInt8 && ctx.input_types[9].dtype != DType::kUInt8)) {
      throw_invalid(where, "y_scale and y_zero_point must be one float32 and one int8 or uint8");
    }
    return ctx.input_types[9].dtype;
  }

  // The product with its epilogue: bias, GELU, column scale, residual, then requantization to codes.
  void run_with_epilogue(RunContext& ctx) {
    const Tensor& x = *ctx.inputs[0];
    Int8GemmOutput out;
    out.target = ctx.target;
    out.y = ctx.outputs[0]->raw_data();
    out.epilogue.bias = has_bias_ ? ctx.inputs[5]->data<float>() : nullptr;
    out.epilogue.activation = gelu_ ? GemmActivation::kGeluErf : GemmActivation::kNone;
    out.epilogue.col_scale = has_col_scale_ ? ctx.inputs[6]->data<float>() : nullptr;
    out.epilogue.residual = has_residual_ ? ctx.inputs[7]->data<float>() : nullptr;
    if (quantize_) {
      out.quantize = true;
      out.out_scale = ctx.inputs[8]->data<float>()[0];
      out.out_signed = ctx.inputs[9]->dtype() == DType::kInt8;
      out.out_zero_point = out.out_signed ? ctx.inputs[9]->data<int8_t>()[0] : ctx.inputs[9]->data<uint8_t>()[0];
    }
    if (residual_broadcasts_) {
      out.y = product_buf_.raw_data();
      out.epilogue.residual = nullptr;
      out.quantize = false;
    }
    const bool is_signed = x.dtype() == DType::kInt8;
    int32_t zero_point = 0;
    if (ctx.inputs[2]) zero_point = is_signed ? ctx.inputs[2]->data<int8_t>()[0] : ctx.inputs[2]->data<uint8_t>()[0];
    if (packed_.k() == 0) throw_invalid(node_label(node_), "an epilogue needs K > 0 (the fusion never makes one)");
    int8_gemm(packed_, x.raw_data(), is_signed, rows_, zero_point, ctx.inputs[1]->data<float>()[0], w_scale_.data(),
              w_scale_.size() > 1, out, ctx.scratch.data(), ctx.pool);
    if (residual_broadcasts_) add_residual_broadcasting(ctx);
  }

  // output = product_buf_ + residual along residual_plan_, then quantized when the output is codes.
  void add_residual_broadcasting(RunContext& ctx) {
    const BroadcastPlan& plan = residual_plan_;
    const int64_t inner = plan.inner(), sp = plan.inner_step(0), sr = plan.inner_step(1);
    const float* product = product_buf_.data<float>();
    const float* r = ctx.inputs[7]->data<float>();
    float* sum = quantize_ ? sum_buf_.data<float>() : ctx.outputs[0]->data<float>();
    int64_t offsets[2];
    for (int64_t row = 0; row < plan.rows(); ++row) {
      plan.row_offsets(row, offsets);
      for (int64_t j = 0; j < inner; ++j) sum[row * inner + j] = product[offsets[0] + j * sp] + r[offsets[1] + j * sr];
    }
    if (!quantize_) return;
    const bool out_signed = ctx.inputs[9]->dtype() == DType::kInt8;
    const int32_t zp = out_signed ? ctx.inputs[9]->data<int8_t>()[0] : ctx.inputs[9]->data<uint8_t>()[0];
    quantize_run(sum, ctx.outputs[0]->raw_data(), out_signed, full_numel_, ctx.inputs[8]->data<float>()[0], zp,
                 ctx.target);
  }

  // The int8 GEMM's activation scratch (planned into the arena).
  std::size_t scratch_bytes(int threads) const override {
    (void)threads;
    return scratch_bytes_;
  }

  void finish(const InferContext& ctx) {
    const Tensor& ws = *ctx.input_values[4];
    w_scale_ = std::vector<float>(ws.data<float>(), ws.data<float>() + ws.numel());
    scratch_bytes_ = packed_.scratch_bytes(rows_);
  }

  onnx::Node node_;
  std::optional<Int8Isa> forced_;
  Int8Isa isa_ = Int8Isa::kReference;
  int64_t rows_ = 0;
  Shape product_shape_;
  bool has_bias_ = false, has_col_scale_ = false, gelu_ = false, has_residual_ = false, quantize_ = false;
  bool has_epilogue_ = false, residual_broadcasts_ = false;
  BroadcastPlan residual_plan_{Shape{}, {}};  // where residual_broadcasts_
  int64_t full_numel_ = 0;
  Tensor product_buf_, sum_buf_;
  PackedInt8Weights packed_;
  std::vector<float> w_scale_;
  std::size_t scratch_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> make_qmatmul_f_with_isa(const onnx::Node& node, int opset, Int8Isa isa) {
  (void)opset;
  return std::make_unique<QMatMulF>(node, isa);
}

std::unique_ptr<Kernel> make_qmatmul_f(const onnx::Node& node, int opset) {
  (void)opset;
  return std::make_unique<QMatMulF>(node, std::nullopt);
}

}  // namespace detrq::runtime::kernels
