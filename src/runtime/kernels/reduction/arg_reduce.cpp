// ArgMax and ArgMin: the int64 index of the extreme value along an axis (first occurrence, or last with
// select_last_index), keepdims as for reductions.
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class ArgReduceKernel final : public Kernel {
 public:
  ArgReduceKernel(const onnx::Node& node, bool max)
      : node_(node), max_(max), keepdims_(node.attr_int("keepdims", 1) != 0),
        last_(node.attr_int("select_last_index", 0) != 0) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    const TensorType& x = ctx.input_types[0];
    require_dtype(node_, "data", x.dtype, numeric_dtypes());
    axis_ = normalize_axis(node_, node_.attr_int("axis", 0), static_cast<int64_t>(x.shape.size()));
    if (x.shape[static_cast<std::size_t>(axis_)] == 0) throw_invalid(node_.describe(), "cannot take the arg of an empty axis");
    Shape out;
    for (std::size_t d = 0; d < x.shape.size(); ++d) {
      if (static_cast<int64_t>(d) != axis_) {
        out.push_back(x.shape[d]);
      } else if (keepdims_) {
        out.push_back(1);
      }
    }
    return {TensorType{DType::kInt64, out}};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis_; ++d) outer *= x.dim(d);
    for (int d = static_cast<int>(axis_) + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t n = x.dim(static_cast<int>(axis_));
    int64_t* out = mdata<int64_t>(*ctx.outputs[0]);
    dispatch_all(x.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>) {
        const T* in = cdata<T>(x);
        ctx.pool.parallel_for(outer * inner, 1024, [&](int64_t b, int64_t e) {
          for (int64_t j = b; j < e; ++j) {
            const int64_t o = j / inner, i = j % inner;
            const T* p = in + o * n * inner + i;
            auto best = load(p[0]);
            int64_t at = 0;
            for (int64_t k = 1; k < n; ++k) {
              const auto v = load(p[k * inner]);
              const bool better = max_ ? (last_ ? v >= best : v > best) : (last_ ? v <= best : v < best);
              if (better) {
                best = v;
                at = k;
              }
            }
            out[j] = at;
          }
        });
      }
    });
  }

 private:
  onnx::Node node_;
  bool max_;
  bool keepdims_;
  bool last_;
  int64_t axis_ = 0;
};

}  // namespace

void register_arg_reduce_kernels(KernelRegistry& registry) {
  registry.add("", "ArgMax", 1, [](const onnx::Node& node, int) { return std::make_unique<ArgReduceKernel>(node, true); });
  registry.add("", "ArgMin", 1, [](const onnx::Node& node, int) { return std::make_unique<ArgReduceKernel>(node, false); });
}

}  // namespace detrq::runtime::kernels
