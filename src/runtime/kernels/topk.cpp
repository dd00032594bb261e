// TopK: the k largest (or smallest) values along an axis and their indices; ties keep the lower index
// first, as onnxruntime does, so results are deterministic.
#include <algorithm>
#include <numeric>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class TopKKernel final : public Kernel {
 public:
  TopKKernel(const onnx::Node& node, int opset)
      : node_(node),
        opset_(opset),
        largest_(opset < 11 || node.attr_int("largest", 1) != 0),
        sorted_(opset < 11 || node.attr_int("sorted", 1) != 0) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    const TensorType& x = require_input(ctx, 0);
    if (opset_ < 10) {
      require_input_count(ctx, 1, 1);
      k_ = node_.attr_int("k", -1);
    } else {
      require_input_count(ctx, 2, 2);
      const std::vector<int64_t> k = read_int_values(node_, require_constant(ctx, 1, "k"), "k");
      if (k.size() != 1) throw_invalid(node_.describe(), "k must hold one value");
      k_ = k[0];
    }
    require_dtype(node_, "X", x.dtype, numeric_dtypes());
    axis_ = normalize_axis(node_, node_.attr_int("axis", -1), static_cast<int64_t>(x.shape.size()));
    const int64_t n = x.shape[static_cast<std::size_t>(axis_)];
    if (k_ < 0 || k_ > n) {
      throw_invalid(node_.describe(), "k = " + std::to_string(k_) + " is outside [0, " + std::to_string(n) + "] for axis " + std::to_string(axis_));
    }
    Shape out = x.shape;
    out[static_cast<std::size_t>(axis_)] = k_;
    return {TensorType{x.dtype, out}, TensorType{DType::kInt64, out}};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    dispatch_all(x.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>) topk<T>(x, ctx);
    });
  }

 private:
  template <typename T>
  void topk(const Tensor& x, RunContext& ctx) const {
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis_; ++d) outer *= x.dim(d);
    for (int d = static_cast<int>(axis_) + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t n = x.dim(static_cast<int>(axis_));
    const T* in = cdata<T>(x);
    T* values = ctx.outputs[0] ? mdata<T>(*ctx.outputs[0]) : nullptr;
    int64_t* indices = ctx.outputs.size() > 1 && ctx.outputs[1] ? mdata<int64_t>(*ctx.outputs[1]) : nullptr;
    if (k_ == 0 || outer * inner == 0) return;
    ctx.pool.parallel_for(outer * inner, 1, [&](int64_t b, int64_t e) {
      std::vector<int64_t> order(static_cast<std::size_t>(n));
      for (int64_t j = b; j < e; ++j) {
        const int64_t o = j / inner, i = j % inner;
        const T* row = in + o * n * inner + i;
        auto value = [&](int64_t a) { return load(row[a * inner]); };
        // Strict weak order even with NaN (ranked above every number): better value first, then lower index.
        auto greater = [](auto p, auto q) {
          if (p != p) return q == q;
          if (q != q) return false;
          return p > q;
        };
        auto before = [&](int64_t a, int64_t c) {
          const auto va = value(a), vc = value(c);
          if (largest_ ? greater(va, vc) : greater(vc, va)) return true;
          if (largest_ ? greater(vc, va) : greater(va, vc)) return false;
          return a < c;
        };
        std::iota(order.begin(), order.end(), 0);
        if (k_ < n) {
          std::nth_element(order.begin(), order.begin() + k_ - 1, order.end(), before);
        }
        if (sorted_ || k_ < n) std::sort(order.begin(), order.begin() + k_, before);
        for (int64_t t = 0; t < k_; ++t) {
          const int64_t at = o * k_ * inner + t * inner + i;
          const int64_t src = order[static_cast<std::size_t>(t)];
          if (values) values[at] = row[src * inner];
          if (indices) indices[at] = src;
        }
      }
    });
  }

  onnx::Node node_;
  int opset_;
  bool largest_;
  bool sorted_;
  int64_t k_ = 0;
  int64_t axis_ = -1;
};

}  // namespace

void register_topk_kernel(KernelRegistry& registry) {
  registry.add("", "TopK", 1, [](const onnx::Node& node, int opset) { return std::make_unique<TopKKernel>(node, opset); });
}

}  // namespace detrq::runtime::kernels
