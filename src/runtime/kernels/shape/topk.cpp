// TopK: the k largest (or smallest) values along an axis and their indices; ties keep the lower index
// first, as onnxruntime does, so results are deterministic.
#include <algorithm>
#include <atomic>
#include <span>
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
    axis_length_ = n;
    return {TensorType{x.dtype, out}, TensorType{DType::kInt64, out}};
  }

  // Scratch: each thread's index order along the axis.
  std::size_t scratch_bytes(int threads) const override {
    ScratchLayout layout;
    layout.take<int64_t>(static_cast<std::size_t>(threads * axis_length_));
    return layout.bytes();
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
    int64_t* orders = ScratchLayout(ctx.scratch).take<int64_t>(static_cast<std::size_t>(ctx.pool.size() * n));
    // One chunk per thread slot (its own order buffer), taking rows from a shared counter.
    std::atomic<int64_t> next{0};
    ctx.pool.parallel_for(ctx.pool.size(), 1, [&](int64_t slot, int64_t) {
      const std::span<int64_t> order(orders + slot * n, static_cast<std::size_t>(n));
      for (int64_t j = next.fetch_add(1); j < outer * inner; j = next.fetch_add(1)) {
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
  int64_t axis_length_ = 0;
};

}  // namespace

void register_topk_kernel(KernelRegistry& registry) {
  registry.add("", "TopK", 1, [](const onnx::Node& node, int opset) { return std::make_unique<TopKKernel>(node, opset); });
}

}  // namespace detrq::runtime::kernels
