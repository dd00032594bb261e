// Range: start, start + delta, ... up to (excluding) limit; the inputs must be constants since they fix
// the output's length.
#include <cmath>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class RangeKernel final : public Kernel {
 public:
  explicit RangeKernel(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 3, 3);
    const DType dtype = ctx.input_types[0].dtype;
    require_dtype(node_, "start", dtype, {DType::kFloat32, DType::kFloat64, DType::kInt16, DType::kInt32, DType::kInt64});
    for (std::size_t i = 0; i < 3; ++i) {
      if (ctx.input_types[i].dtype != dtype || core::shape_numel(ctx.input_types[i].shape) != 1) {
        throw_invalid(node_.describe(), "start, limit and delta must be scalars of one dtype");
      }
    }
    const double start = scalar(require_constant(ctx, 0, "start"));
    const double limit = scalar(require_constant(ctx, 1, "limit"));
    const double delta = scalar(require_constant(ctx, 2, "delta"));
    if (delta == 0) throw_invalid(node_.describe(), "delta is 0");
    const double n = std::ceil((limit - start) / delta);
    if (!(n < 1e12)) throw_invalid(node_.describe(), "the range is too long or not finite");
    count_ = n > 0 ? static_cast<int64_t>(n) : 0;
    return {TensorType{dtype, {count_}}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    dispatch_all(out.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
        const T start = cdata<T>(*ctx.inputs[0])[0];
        const T delta = cdata<T>(*ctx.inputs[2])[0];
        T* p = mdata<T>(out);
        // Accumulated like the specification's loop (start + i * delta would round differently).
        T v = start;
        for (int64_t i = 0; i < count_; ++i) {
          p[i] = v;
          v = static_cast<T>(v + delta);
        }
      }
    });
  }

 private:
  double scalar(const Tensor& t) const {
    return dispatch_all(t.dtype(), node_, [&](auto tag) -> double {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_arithmetic_v<T>) {
        return static_cast<double>(cdata<T>(t)[0]);
      } else {
        return 0.0;
      }
    });
  }

  onnx::Node node_;
  int64_t count_ = 0;
};

}  // namespace

void register_range_kernel(KernelRegistry& registry) {
  registry.add("", "Range", 11, [](const onnx::Node& node, int) { return std::make_unique<RangeKernel>(node); });
}

}  // namespace detrq::runtime::kernels
