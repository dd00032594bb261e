// Clip: limits values to [min, max], from attributes before opset 11 and optional scalar inputs since.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class ClipKernel final : public Kernel {
 public:
  ClipKernel(const onnx::Node& node, int opset) : node_(node), opset_(opset) {
    if (opset < 11) {
      attr_min_ = node.attr_float("min", std::numeric_limits<float>::lowest());
      attr_max_ = node.attr_float("max", std::numeric_limits<float>::max());
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, opset_ < 11 ? 1 : 3);
    const DType dtype = ctx.input_types[0].dtype;
    require_dtype(node_, "input", dtype, opset_ < 11 ? float_dtypes() : numeric_dtypes());
    for (std::size_t i = 1; i < ctx.input_types.size(); ++i) {
      if (!ctx.input_present(i)) continue;
      if (ctx.input_types[i].dtype != dtype || core::shape_numel(ctx.input_types[i].shape) != 1) {
        throw_invalid(node_.describe(), std::string(i == 1 ? "min" : "max") + " must be a scalar of the input's dtype");
      }
    }
    return {ctx.input_types[0]};
  }

  void run(RunContext& ctx) override {
    const Tensor& in = *ctx.inputs[0];
    dispatch_all(in.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>) {
        using C = ComputeType<T>;
        C lo = std::numeric_limits<C>::lowest();
        C hi = std::numeric_limits<C>::max();
        if constexpr (std::is_floating_point_v<C>) {
          lo = -std::numeric_limits<C>::infinity();
          hi = std::numeric_limits<C>::infinity();
        }
        if (opset_ < 11) {
          lo = static_cast<C>(attr_min_);
          hi = static_cast<C>(attr_max_);
        } else {
          if (ctx.inputs.size() > 1 && ctx.inputs[1]) lo = load(cdata<T>(*ctx.inputs[1])[0]);
          if (ctx.inputs.size() > 2 && ctx.inputs[2]) hi = load(cdata<T>(*ctx.inputs[2])[0]);
        }
        const T* x = cdata<T>(in);
        T* y = mdata<T>(*ctx.outputs[0]);
        ctx.pool.parallel_for(in.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
          // min(max(x, lo), hi) as onnxruntime computes it: NaN stays NaN, and lo > hi gives hi.
          for (int64_t i = b; i < e; ++i) {
            const C v = load(x[i]);
            const C m = v < lo ? lo : v;
            y[i] = store<T>(hi < m ? hi : m);
          }
        });
      }
    });
  }

 private:
  onnx::Node node_;
  int opset_;
  float attr_min_ = 0.0F;
  float attr_max_ = 0.0F;
};

}  // namespace

void register_clip_kernel(KernelRegistry& registry) {
  registry.add("", "Clip", 6, [](const onnx::Node& node, int opset) { return std::make_unique<ClipKernel>(node, opset); });
}

}  // namespace detrq::runtime::kernels
