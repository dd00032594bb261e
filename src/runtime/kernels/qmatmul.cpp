// QMatMulF (domain com.detrq, made only by the Session's Q/DQ fusion): MatMul of a quantized
// activation (q_x, x_scale, x_zero_point) by a constant int8 weight [K, N] (w_q, w_scale per tensor or
// per output column, zero point 0), in int8 arithmetic with a float output; what
// DequantizeLinear -> MatMul <- DequantizeLinear computes, without materializing the float operands.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "detrq/core/error.h"
#include "runtime/kernels/int8_gemm.h"
#include "runtime/kernels/quantization.h"

namespace detrq::runtime::kernels {
namespace {

class QMatMulF final : public Kernel {
 public:
  // `forced`: pack for that ISA; else for the best the session's target has.
  QMatMulF(const onnx::Node& node, std::optional<Int8Isa> forced) : node_(node), forced_(forced) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    const std::string where = node_label(node_);
    if (ctx.input_types.size() != 5 || !ctx.input_present(0) || !ctx.input_present(1) || !ctx.input_present(3) ||
        !ctx.input_present(4)) {
      throw_invalid(where, "needs inputs q_x, x_scale, [x_zero_point], w_q, w_scale");
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
    return {TensorType{DType::kFloat32, out}};
  }

  void prepare(const InferContext& ctx) override {
    const Tensor& w = *ctx.input_values[3];
    if (w.numel() == 0) return;  // K or N is 0: run() writes nothing
    isa_ = forced_ ? *forced_ : best_int8_isa(ctx.target);
    packed_ = PackedInt8Weights(w.data<int8_t>(), w.dim(0), w.dim(1), isa_, ctx.target);
    finish(ctx);
  }

  // Engine files: the packed int8 weight, restored by a copy instead of packing. The int8 weight itself
  // stays a constant input (a quarter of the float size; the plan keeps it loadable without the state).
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
    auto packed = PackedInt8Weights::from_blobs(state.blobs, w[0], w[1], *isa, ctx.target);
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
              w_scale_.size() > 1, y.data<float>(), scratch_.raw_data(), ctx.pool);
  }

 private:
  void finish(const InferContext& ctx) {
    const Tensor& ws = *ctx.input_values[4];
    w_scale_ = std::vector<float>(ws.data<float>(), ws.data<float>() + ws.numel());
    const std::size_t bytes = packed_.scratch_bytes(rows_);
    scratch_ = Tensor::empty(DType::kUInt8, {static_cast<int64_t>(std::max<std::size_t>(bytes, 1))});
  }

  onnx::Node node_;
  std::optional<Int8Isa> forced_;
  Int8Isa isa_ = Int8Isa::kReference;
  int64_t rows_ = 0;
  PackedInt8Weights packed_;
  std::vector<float> w_scale_;
  Tensor scratch_;
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
