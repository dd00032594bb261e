// CumSum: running sums along an axis (given as an input), inclusive or exclusive, forward or reversed.
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class CumSumKernel final : public Kernel {
 public:
  explicit CumSumKernel(const onnx::Node& node)
      : node_(node), exclusive_(node.attr_int("exclusive", 0) != 0), reverse_(node.attr_int("reverse", 0) != 0) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 2, 2);
    require_dtype(node_, "x", ctx.input_types[0].dtype,
                  {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64,
                   DType::kUInt32, DType::kUInt64});
    require_dtype(node_, "axis", ctx.input_types[1].dtype, {DType::kInt64, DType::kInt32});
    if (core::shape_numel(ctx.input_types[1].shape) != 1) throw_invalid(node_.describe(), "axis must be a scalar");
    if (ctx.input_types[0].shape.empty()) throw_invalid(node_.describe(), "input must have rank >= 1");
    return {ctx.input_types[0]};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    const int64_t axis = normalize_axis(node_, read_int_values(node_, *ctx.inputs[1], "axis")[0], x.rank());
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int d = static_cast<int>(axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t n = x.dim(static_cast<int>(axis));
    dispatch_all(x.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>) {
        using C = std::conditional_t<kIsHalfType<T>, float, T>;
        const T* in = cdata<T>(x);
        T* out = mdata<T>(*ctx.outputs[0]);
        ctx.pool.parallel_for(outer * inner, 4096, [&](int64_t b, int64_t e) {
          for (int64_t j = b; j < e; ++j) {
            const int64_t o = j / inner, i = j % inner;
            const int64_t base = o * n * inner + i;
            C sum = 0;
            for (int64_t s = 0; s < n; ++s) {
              const int64_t k = reverse_ ? n - 1 - s : s;
              const int64_t at = base + k * inner;
              const C v = load(in[at]);
              if (exclusive_) {
                out[at] = store<T>(sum);
                sum = static_cast<C>(sum + v);
              } else {
                sum = static_cast<C>(sum + v);
                out[at] = store<T>(sum);
              }
            }
          }
        });
      }
    });
  }

 private:
  onnx::Node node_;
  bool exclusive_;
  bool reverse_;
};

}  // namespace

void register_cumsum_kernel(KernelRegistry& registry) {
  registry.add("", "CumSum", 11, [](const onnx::Node& node, int) { return std::make_unique<CumSumKernel>(node); });
}

}  // namespace detrq::runtime::kernels
