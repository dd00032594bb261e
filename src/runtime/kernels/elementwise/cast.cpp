// Cast and CastLike: convert between every numeric dtype, bool and the 16-bit floats.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

// One value from S to D. Float to integer truncates toward zero like C; NaN becomes 0 and values out of
// range saturate, so a bad value gives a defined result rather than undefined behaviour.
template <typename D, typename S>
inline D convert(S s) {
  const auto v = load(s);
  using V = decltype(v);
  if constexpr (std::is_same_v<D, bool>) {
    return v != V(0);
  } else if constexpr (kIsHalfType<D>) {
    return store<D>(static_cast<float>(v));
  } else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<V>) {
    if (!(v == v)) return D(0);
    if (v <= static_cast<V>(std::numeric_limits<D>::lowest())) return std::numeric_limits<D>::lowest();
    if (v >= static_cast<V>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

using CastFn = void (*)(const void*, void*, int64_t, core::ThreadPool&);

template <typename D, typename S>
void cast_loop(const void* sv, void* dv, int64_t n, core::ThreadPool& pool) {
  const S* s = static_cast<const S*>(sv);
  D* d = static_cast<D*>(dv);
  pool.parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] = convert<D, S>(s[i]);
  });
}

class CastKernel final : public Kernel {
 public:
  // CastLike takes the target dtype from its second input instead of the 'to' attribute.
  CastKernel(const onnx::Node& node, bool like) : node_(node), like_(like) {
    if (like) return;
    if (!node.has_attr("to")) throw_invalid(node.describe(), "attribute 'to' is missing");
    to_ = static_cast<DType>(node.attr_int("to", 0));
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, like_ ? 2 : 1, like_ ? 2 : 1);
    if (like_) to_ = ctx.input_types[1].dtype;
    const DType from = ctx.input_types[0].dtype;
    fn_ = dispatch_all(from, node_, [&](auto ts) {
      using S = typename decltype(ts)::type;
      return dispatch_all(to_, node_, [](auto td) -> CastFn {
        using D = typename decltype(td)::type;
        return &cast_loop<D, S>;
      });
    });
    same_ = from == to_;
    return {TensorType{to_, ctx.input_types[0].shape}};
  }

  void run(RunContext& ctx) override {
    const Tensor& in = *ctx.inputs[0];
    if (same_) {
      if (in.nbytes()) std::memcpy(ctx.outputs[0]->raw_data(), in.raw_data(), in.nbytes());
      return;
    }
    fn_(in.raw_data(), ctx.outputs[0]->raw_data(), in.numel(), ctx.pool);
  }

 private:
  onnx::Node node_;
  bool like_;
  DType to_ = DType::kUndefined;
  CastFn fn_ = nullptr;
  bool same_ = false;
};

}  // namespace

void register_cast_kernel(KernelRegistry& registry) {
  registry.add("", "Cast", 6, [](const onnx::Node& node, int) { return std::make_unique<CastKernel>(node, false); });
  registry.add("", "CastLike", 15, [](const onnx::Node& node, int) { return std::make_unique<CastKernel>(node, true); });
}

}  // namespace detrq::runtime::kernels
