// DequantizeLinear (opset 10+): y = (x - zero_point) * scale for int8, uint8 or int32 x, per tensor or
// per axis.
#include <cstdint>

#include "detrq/core/error.h"
#include "runtime/kernels/quantization/quantization.h"

namespace detrq::runtime::kernels {
namespace {

template <typename Q>
void dequantize_block(const Q* x, float* y, int64_t n, float scale, int32_t zero_point) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zero_point) * scale;
}

class DequantizeLinear final : public Kernel {
 public:
  explicit DequantizeLinear(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    if (ctx.input_types.size() < 2 || !ctx.input_present(0) || !ctx.input_present(1)) {
      throw_invalid(node_label(node_), "needs inputs x and x_scale");
    }
    const TensorType& x = ctx.input_types[0];
    in_ = x.dtype;
    if (in_ != DType::kInt8 && in_ != DType::kUInt8 && in_ != DType::kInt32) {
      throw_unsupported(node_label(node_), std::string("input of dtype ") + core::dtype_name(in_), "int8, uint8 or int32");
    }
    const bool has_zp = ctx.input_present(2);
    if (has_zp && ctx.input_types[2].dtype != in_) {
      throw_invalid(node_label(node_), "zero point dtype differs from the input's");
    }
    axis_ = quant_axis(node_, x, ctx.input_types[1], has_zp ? &ctx.input_types[2] : nullptr);
    return {TensorType{DType::kFloat32, x.shape}};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    const float* scale = ctx.inputs[1]->data<float>();
    const Tensor* zp = ctx.inputs.size() > 2 ? ctx.inputs[2] : nullptr;
    Tensor& y = *ctx.outputs[0];
    auto zero_point = [&](int64_t c) -> int32_t {
      if (!zp) return 0;
      switch (in_) {
        case DType::kInt8: return zp->data<int8_t>()[c];
        case DType::kUInt8: return zp->data<uint8_t>()[c];
        default: return zp->data<int32_t>()[c];
      }
    };
    auto block = [&](int64_t offset, int64_t n, int64_t c) {
      float* out = y.data<float>() + offset;
      switch (in_) {
        case DType::kInt8: dequantize_block(x.data<int8_t>() + offset, out, n, scale[c], zero_point(c)); break;
        case DType::kUInt8: dequantize_block(x.data<uint8_t>() + offset, out, n, scale[c], zero_point(c)); break;
        default: dequantize_block(x.data<int32_t>() + offset, out, n, scale[c], zero_point(c)); break;
      }
    };
    if (!axis_.per_axis) {
      ctx.pool.parallel_for(x.numel(), 16384, [&](int64_t b, int64_t e) { block(b, e - b, 0); });
      return;
    }
    const int64_t inner = axis_.inner;
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner));
    ctx.pool.parallel_for(axis_.outer * axis_.channels, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) block(r * inner, inner, r % axis_.channels);
    });
  }

 private:
  onnx::Node node_;
  QuantAxis axis_;
  DType in_ = DType::kInt8;
};

}  // namespace

std::unique_ptr<Kernel> make_dequantize_linear(const onnx::Node& node, int opset) {
  (void)opset;
  return std::make_unique<DequantizeLinear>(node);
}

}  // namespace detrq::runtime::kernels
