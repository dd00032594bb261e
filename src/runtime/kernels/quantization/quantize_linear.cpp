// QuantizeLinear (opset 10+): y = saturate(round_half_to_even(x / scale) + zero_point), int8 or uint8,
// per tensor or per axis.
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "detrq/core/error.h"
#include "detrq/runtime/quantize.h"
#include "runtime/kernels/quantization/quantization.h"
#include "runtime/kernels/quantization/requantize.h"

namespace detrq::runtime::kernels {
namespace {

template <typename Q>
void quantize_block(const float* x, Q* y, int64_t n, float scale, float zero_point) {
  constexpr float lo = static_cast<float>(std::numeric_limits<Q>::min());
  constexpr float hi = static_cast<float>(std::numeric_limits<Q>::max());
  for (int64_t i = 0; i < n; ++i) {
    // Division, not a multiply by 1/scale, so that results match onnxruntime bit for bit; rint
    // rounds half to even in the default rounding mode.
    float v = std::rint(x[i] / scale) + zero_point;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    y[i] = v == v ? static_cast<Q>(v) : static_cast<Q>(zero_point);  // NaN: the zero point
  }
}

class QuantizeLinear final : public Kernel {
 public:
  explicit QuantizeLinear(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    if (ctx.input_types.size() < 2 || !ctx.input_present(0) || !ctx.input_present(1)) {
      throw_invalid(node_label(node_), "needs inputs x and y_scale");
    }
    const TensorType& x = ctx.input_types[0];
    if (x.dtype != DType::kFloat32) {
      throw_unsupported(node_label(node_), std::string("input of dtype ") + core::dtype_name(x.dtype), "float32 only");
    }
    const bool has_zp = ctx.input_present(2);
    DType out = has_zp ? ctx.input_types[2].dtype : DType::kUInt8;
    if (auto it = node_.attributes.find("output_dtype"); !has_zp && it != node_.attributes.end() && it->second.i != 0) {
      out = static_cast<DType>(it->second.i);
    }
    if (out != DType::kInt8 && out != DType::kUInt8) {
      throw_unsupported(node_label(node_), std::string("output dtype ") + core::dtype_name(out), "int8 or uint8");
    }
    axis_ = quant_axis(node_, x, ctx.input_types[1], has_zp ? &ctx.input_types[2] : nullptr);
    out_ = out;
    return {TensorType{out, x.shape}};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    const float* scale = ctx.inputs[1]->data<float>();
    const Tensor* zp = ctx.inputs.size() > 2 ? ctx.inputs[2] : nullptr;
    Tensor& y = *ctx.outputs[0];
    const int64_t rows = axis_.outer * axis_.channels;
    const int64_t inner = axis_.per_axis ? axis_.inner : x.numel();
    const int64_t nrows = axis_.per_axis ? rows : 1;
    auto zero_point = [&](int64_t c) -> float {
      if (!zp) return 0.0F;
      return out_ == DType::kInt8 ? static_cast<float>(zp->data<int8_t>()[c]) : static_cast<float>(zp->data<uint8_t>()[c]);
    };
    // Parallel over rows (per axis) or over chunks of the one row (per tensor).
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner));
    if (nrows == 1) {
      ctx.pool.parallel_for(inner, 16384, [&](int64_t b, int64_t e) {
        // The vectorized run: the same codes as quantize_block.
        quantize_run(x.data<float>() + b, static_cast<uint8_t*>(y.raw_data()) + b, out_ == DType::kInt8, e - b,
                     scale[0], static_cast<int32_t>(zero_point(0)), ctx.target);
      });
      return;
    }
    ctx.pool.parallel_for(nrows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t c = r % axis_.channels;
        if (out_ == DType::kInt8) {
          quantize_block(x.data<float>() + r * inner, y.data<int8_t>() + r * inner, inner, scale[c], zero_point(c));
        } else {
          quantize_block(x.data<float>() + r * inner, y.data<uint8_t>() + r * inner, inner, scale[c], zero_point(c));
        }
      }
    });
  }

 private:
  onnx::Node node_;
  QuantAxis axis_;
  DType out_ = DType::kUInt8;
};

}  // namespace

}  // namespace detrq::runtime::kernels

namespace detrq::runtime {

core::Tensor quantize_constant(const core::Tensor& x, const core::Tensor& scale, const core::Tensor* zero_point,
                               int64_t axis) {
  const int64_t channels = scale.numel();
  if (x.dtype() != core::DType::kFloat32 || scale.dtype() != core::DType::kFloat32 || scale.rank() > 1 ||
      channels < 1 || (channels > 1 && (axis < 0 || axis >= x.rank() || x.dim(static_cast<int>(axis)) != channels)) ||
      (zero_point && ((zero_point->dtype() != core::DType::kInt8 && zero_point->dtype() != core::DType::kUInt8) ||
                      zero_point->numel() != channels))) {
    throw std::invalid_argument("quantize_constant: operands do not fit QuantizeLinear");
  }
  const bool int8 = zero_point && zero_point->dtype() == core::DType::kInt8;
  core::Tensor y = core::Tensor::empty(int8 ? core::DType::kInt8 : core::DType::kUInt8, x.shape());
  int64_t inner = x.numel();
  if (channels > 1) {
    inner = 1;
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(static_cast<int>(d));
  }
  const int64_t rows = inner == 0 ? 0 : x.numel() / inner;  // outer x channels
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r % channels;
    const float* xs = x.data<float>() + r * inner;
    if (int8) {
      kernels::quantize_block(xs, y.data<int8_t>() + r * inner, inner, scale.data<float>()[c],
                              static_cast<float>(zero_point->data<int8_t>()[c]));
    } else {
      kernels::quantize_block(xs, y.data<uint8_t>() + r * inner, inner, scale.data<float>()[c],
                              zero_point ? static_cast<float>(zero_point->data<uint8_t>()[c]) : 0.0F);
    }
  }
  return y;
}

}  // namespace detrq::runtime

namespace detrq::runtime::kernels {

std::unique_ptr<Kernel> make_quantize_linear(const onnx::Node& node, int opset) {
  (void)opset;
  return std::make_unique<QuantizeLinear>(node);
}

}  // namespace detrq::runtime::kernels
