// Activations with attributes: LeakyRelu, Elu, HardSigmoid; and the float classifiers IsNaN and IsInf.
#include <cmath>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

enum class Activation { kLeakyRelu, kElu, kHardSigmoid };

class ParametricActivationKernel final : public Kernel {
 public:
  ParametricActivationKernel(const onnx::Node& node, Activation kind) : node_(node), kind_(kind) {
    switch (kind) {
      case Activation::kLeakyRelu: alpha_ = node.attr_float("alpha", 0.01F); break;
      case Activation::kElu: alpha_ = node.attr_float("alpha", 1.0F); break;
      case Activation::kHardSigmoid:
        alpha_ = node.attr_float("alpha", 0.2F);
        beta_ = node.attr_float("beta", 0.5F);
        break;
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    require_dtype(node_, "X", ctx.input_types[0].dtype, float_dtypes());
    return {ctx.input_types[0]};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    dispatch_all(x.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_floating_point_v<T> || kIsHalfType<T>) {
        using C = ComputeType<T>;
        const T* in = cdata<T>(x);
        T* out = mdata<T>(*ctx.outputs[0]);
        const C alpha = static_cast<C>(alpha_), beta = static_cast<C>(beta_);
        const Activation kind = kind_;
        ctx.pool.parallel_for(x.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            const C v = load(in[i]);
            C r = v;
            switch (kind) {
              case Activation::kLeakyRelu: r = v < C(0) ? alpha * v : v; break;
              case Activation::kElu: r = v < C(0) ? alpha * (std::exp(v) - C(1)) : v; break;
              case Activation::kHardSigmoid: {
                const C h = alpha * v + beta;
                r = h < C(0) ? C(0) : (h > C(1) ? C(1) : h);
                break;
              }
            }
            out[i] = store<T>(r);
          }
        });
      }
    });
  }

 private:
  onnx::Node node_;
  Activation kind_;
  float alpha_ = 0.0F;
  float beta_ = 0.0F;
};

class FloatClassKernel final : public Kernel {
 public:
  FloatClassKernel(const onnx::Node& node, bool nan)
      : node_(node), nan_(nan), negative_(node.attr_int("detect_negative", 1) != 0),
        positive_(node.attr_int("detect_positive", 1) != 0) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    require_dtype(node_, "X", ctx.input_types[0].dtype, float_dtypes());
    return {TensorType{DType::kBool, ctx.input_types[0].shape}};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    bool* out = mdata<bool>(*ctx.outputs[0]);
    dispatch_all(x.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_floating_point_v<T> || kIsHalfType<T>) {
        const T* in = cdata<T>(x);
        for (int64_t i = 0; i < x.numel(); ++i) {
          const auto v = load(in[i]);
          out[i] = nan_ ? std::isnan(v) : (std::isinf(v) && ((v > 0 && positive_) || (v < 0 && negative_)));
        }
      }
    });
  }

 private:
  onnx::Node node_;
  bool nan_;
  bool negative_;
  bool positive_;
};

}  // namespace

void register_parametric_activation_kernels(KernelRegistry& registry) {
  const std::pair<const char*, Activation> activations[] = {
      {"LeakyRelu", Activation::kLeakyRelu}, {"Elu", Activation::kElu}, {"HardSigmoid", Activation::kHardSigmoid}};
  for (const auto& [op, kind] : activations) {
    registry.add("", op, 6, [kind = kind](const onnx::Node& node, int) {
      return std::make_unique<ParametricActivationKernel>(node, kind);
    });
  }
  registry.add("", "IsNaN", 9, [](const onnx::Node& node, int) { return std::make_unique<FloatClassKernel>(node, true); });
  registry.add("", "IsInf", 10, [](const onnx::Node& node, int) { return std::make_unique<FloatClassKernel>(node, false); });
}

}  // namespace detrq::runtime::kernels
