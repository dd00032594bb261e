// Binary elementwise operators with numpy broadcasting: Add, Sub, Mul, Div, Mod, Pow, Equal, Greater, Less,
// GreaterOrEqual, LessOrEqual, And, Or, Xor; and the variadic Max, Min, Sum and Mean built on them.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

// Signed integer arithmetic wraps (as two's complement hardware and onnxruntime do) instead of being UB.
template <typename T, bool = std::is_integral_v<T> && std::is_signed_v<T> && (sizeof(T) >= 4)>
struct Wrap {
  using type = T;
};
template <typename T>
struct Wrap<T, true> {
  using type = std::make_unsigned_t<T>;
};
template <typename T>
using WrapType = typename Wrap<T>::type;

struct AddOp {
  template <typename T>
  T operator()(T a, T b) const { return static_cast<T>(static_cast<WrapType<T>>(a) + static_cast<WrapType<T>>(b)); }
};
struct SubOp {
  template <typename T>
  T operator()(T a, T b) const { return static_cast<T>(static_cast<WrapType<T>>(a) - static_cast<WrapType<T>>(b)); }
};
struct MulOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T> && sizeof(T) < 4) {
      return static_cast<T>(static_cast<uint32_t>(a) * static_cast<uint32_t>(b));
    } else {
      return static_cast<T>(static_cast<WrapType<T>>(a) * static_cast<WrapType<T>>(b));
    }
  }
};
struct DivOp {
  // Integer divisors are checked for zero before the loop; INT_MIN / -1 wraps.
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      if (b == -1) return static_cast<T>(WrapType<T>(0) - static_cast<WrapType<T>>(a));
    }
    return static_cast<T>(a / b);
  }
};
struct PowOp {
  template <typename X, typename Y>
  X operator()(X x, Y y) const {
    if constexpr (std::is_floating_point_v<X>) {
      const X e = static_cast<X>(y);
      if (e == X(2)) return x * x;
      return std::pow(x, e);
    } else if constexpr (std::is_integral_v<Y>) {
      if (y >= 0) {  // exact integer power by squaring, wrapping like the other integer ops
        using U = std::make_unsigned_t<X>;
        U result = 1, base = static_cast<U>(x);
        for (auto n = static_cast<uint64_t>(y); n; n >>= 1) {
          if (n & 1) result = static_cast<U>(result * base);
          base = static_cast<U>(base * base);
        }
        return static_cast<X>(result);
      }
      return static_cast<X>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    } else {
      const double r = std::pow(static_cast<double>(x), static_cast<double>(y));
      if (!(r == r)) return 0;
      return static_cast<X>(std::clamp(r, static_cast<double>(std::numeric_limits<X>::lowest()),
                                       static_cast<double>(std::numeric_limits<X>::max())));
    }
  }
};
struct EqualOp {
  template <typename T>
  bool operator()(T a, T b) const { return a == b; }
};
struct GreaterOp {
  template <typename T>
  bool operator()(T a, T b) const { return a > b; }
};
struct LessOp {
  template <typename T>
  bool operator()(T a, T b) const { return a < b; }
};
struct GreaterOrEqualOp {
  template <typename T>
  bool operator()(T a, T b) const { return a >= b; }
};
struct LessOrEqualOp {
  template <typename T>
  bool operator()(T a, T b) const { return a <= b; }
};
struct AndOp {
  bool operator()(bool a, bool b) const { return a && b; }
};
struct OrOp {
  bool operator()(bool a, bool b) const { return a || b; }
};
struct XorOp {
  bool operator()(bool a, bool b) const { return a != b; }
};
// NaN propagates, as in numpy's maximum/minimum.
struct MaxOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (b != b) return b;
    }
    return a < b ? b : a;
  }
};
struct MinOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (b != b) return b;
    }
    return b < a ? b : a;
  }
};
// Mod with fmod=0: the result takes the divisor's sign (Python's %); integer divisors are checked for zero
// before the loop.
struct ModOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      T r = std::fmod(a, b);
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    } else if constexpr (std::is_signed_v<T>) {
      if (b == -1) return 0;
      T r = static_cast<T>(a % b);
      if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      return r;
    } else {
      return static_cast<T>(a % b);
    }
  }
};
// Mod with fmod=1: the result takes the dividend's sign (C's fmod and %).
struct FmodOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::fmod(a, b);
    } else if constexpr (std::is_signed_v<T>) {
      return b == -1 ? T(0) : static_cast<T>(a % b);
    } else {
      return static_cast<T>(a % b);
    }
  }
};

using BinaryFn = void (*)(const BroadcastPlan&, const void*, const void*, void*, core::ThreadPool&);

// One row of the broadcast loop nest, with the four stride patterns split out so each inner loop is a
// plain contiguous loop the compiler vectorizes.
template <typename A, typename B, typename O, typename F>
inline void binary_row(const A* a, int64_t sa, const B* b, int64_t sb, O* o, int64_t n) {
  const F f{};
  if (sa && sb) {
    for (int64_t i = 0; i < n; ++i) o[i] = store<O>(f(load(a[i]), load(b[i])));
  } else if (sa) {
    const auto bv = load(b[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = store<O>(f(load(a[i]), bv));
  } else if (sb) {
    const auto av = load(a[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = store<O>(f(av, load(b[i])));
  } else {
    const O v = store<O>(f(load(a[0]), load(b[0])));
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  }
}

template <typename A, typename B, typename O, typename F>
void binary_loop(const BroadcastPlan& plan, const void* av, const void* bv, void* ov, core::ThreadPool& pool) {
  const A* a = static_cast<const A*>(av);
  const B* b = static_cast<const B*>(bv);
  O* o = static_cast<O*>(ov);
  const int64_t inner = plan.inner();
  const int64_t sa = plan.inner_step(0);
  const int64_t sb = plan.inner_step(1);
  if (plan.rows() == 1) {
    pool.parallel_for(inner, kElementwiseGrain, [&](int64_t begin, int64_t end) {
      binary_row<A, B, O, F>(a + begin * sa, sa, b + begin * sb, sb, o + begin, end - begin);
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(inner, 1));
  pool.parallel_for(plan.rows(), grain, [&](int64_t begin, int64_t end) {
    int64_t off[2];
    for (int64_t r = begin; r < end; ++r) {
      plan.row_offsets(r, off);
      binary_row<A, B, O, F>(a + off[0], sa, b + off[1], sb, o + r * inner, inner);
    }
  });
}

enum class Family { kArithmetic, kDivision, kPow, kEquality, kOrdering, kLogic };

// Refuses integer division (Div, Mod) by zero, which would otherwise trap.
void check_divisor(const onnx::Node& node, const Tensor& b) {
  dispatch_all(b.dtype(), node, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = cdata<T>(b);
    if constexpr (std::is_integral_v<T>) {
      for (int64_t i = 0; i < b.numel(); ++i) {
        if (p[i] == T(0)) throw_invalid(node.describe(), "integer division by zero", "check the divisor input");
      }
    }
  });
}

class BinaryKernel final : public Kernel {
 public:
  BinaryKernel(const onnx::Node& node, Family family, BinaryFn (*select)(DType, DType, const onnx::Node&))
      : node_(node), family_(family), select_(select) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 2, 2);
    const DType a = ctx.input_types[0].dtype;
    const DType b = ctx.input_types[1].dtype;
    if (family_ != Family::kPow && a != b) {
      throw_invalid(node_.describe(), std::string("inputs have different dtypes (") + core::dtype_name(a) + " and " +
                                          core::dtype_name(b) + ")",
                    "ONNX requires both inputs of this operator to have the same type");
    }
    fn_ = select_(a, b, node_);
    const Shape out = broadcast_shapes(node_, {ctx.input_types[0].shape, ctx.input_types[1].shape});
    plan_ = BroadcastPlan(out, {ctx.input_types[0].shape, ctx.input_types[1].shape});
    integer_division_ = family_ == Family::kDivision && !core::dtype_is_float(a);
    const bool bool_out = family_ == Family::kEquality || family_ == Family::kOrdering || family_ == Family::kLogic;
    return {TensorType{bool_out ? DType::kBool : a, out}};
  }

  void run(RunContext& ctx) override {
    const Tensor& a = *ctx.inputs[0];
    const Tensor& b = *ctx.inputs[1];
    Tensor& out = *ctx.outputs[0];
    if (out.numel() == 0) return;
    if (integer_division_) check_divisor(node_, b);
    fn_(plan_, a.raw_data(), b.raw_data(), out.raw_data(), ctx.pool);
  }

 private:
  onnx::Node node_;
  Family family_;
  BinaryFn (*select_)(DType, DType, const onnx::Node&);
  BinaryFn fn_ = nullptr;
  BroadcastPlan plan_{Shape{}, {}};
  bool integer_division_ = false;
};

// Type selection: which instantiation runs for the input dtypes, after checking them against the spec.
template <typename F>
BinaryFn select_numeric(DType a, DType, const onnx::Node& node) {
  require_dtype(node, "input A", a, numeric_dtypes());
  return dispatch_all(a, node, [](auto tag) -> BinaryFn {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      return nullptr;  // refused by require_dtype above
    } else {
      return &binary_loop<T, T, T, F>;
    }
  });
}

template <typename F, bool kAllowBool>
BinaryFn select_compare(DType a, DType, const onnx::Node& node) {
  std::vector<DType> allowed = numeric_dtypes();
  if (kAllowBool) allowed.push_back(DType::kBool);
  require_dtype(node, "input A", a, allowed);
  return dispatch_all(a, node, [](auto tag) -> BinaryFn {
    using T = typename decltype(tag)::type;
    return &binary_loop<T, T, bool, F>;
  });
}

template <typename F>
BinaryFn select_logic(DType a, DType, const onnx::Node& node) {
  require_dtype(node, "input A", a, {DType::kBool});
  return &binary_loop<bool, bool, bool, F>;
}

// Mod without fmod: floats are refused by the specification (they need fmod=1).
BinaryFn select_mod(DType a, DType b, const onnx::Node& node) {
  if (core::dtype_is_float(a)) {
    throw_invalid(node.describe(), "Mod of floating-point inputs requires fmod=1", "set the fmod attribute to 1");
  }
  return select_numeric<ModOp>(a, b, node);
}

BinaryFn select_pow(DType a, DType b, const onnx::Node& node) {
  require_dtype(node, "input X", a,
                {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64});
  require_dtype(node, "input Y", b, numeric_dtypes());
  return dispatch_all(a, node, [&](auto ta) -> BinaryFn {
    using X = typename decltype(ta)::type;
    return dispatch_all(b, node, [](auto tb) -> BinaryFn {
      using Y = typename decltype(tb)::type;
      if constexpr (std::is_same_v<X, bool> || std::is_same_v<Y, bool> ||
                    !(std::is_floating_point_v<X> || kIsHalfType<X> || std::is_same_v<X, int32_t> ||
                      std::is_same_v<X, int64_t>)) {
        return nullptr;  // refused by require_dtype above
      } else {
        return &binary_loop<X, Y, X, PowOp>;
      }
    });
  });
}

// Max, Min, Sum, Mean over one or more inputs broadcast together: the first pair is combined into the
// output, then each further input is folded into it in place; Mean divides at the end.
class VariadicKernel final : public Kernel {
 public:
  VariadicKernel(const onnx::Node& node, BinaryFn (*select)(DType, DType, const onnx::Node&), bool mean)
      : node_(node), select_(select), mean_(mean) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    if (ctx.input_types.empty()) throw_invalid(node_.describe(), "needs at least one input");
    std::vector<Shape> shapes;
    const DType dtype = require_input(ctx, 0).dtype;
    for (std::size_t i = 0; i < ctx.input_types.size(); ++i) {
      const TensorType& t = require_input(ctx, i);
      if (t.dtype != dtype) throw_invalid(node_.describe(), "inputs have different dtypes");
      shapes.push_back(t.shape);
    }
    if (mean_) require_dtype(node_, "inputs", dtype, float_dtypes());
    fn_ = select_(dtype, dtype, node_);
    const Shape out = broadcast_shapes(node_, shapes);
    plans_.clear();
    // A single input is its own result; otherwise inputs 0 and 1 combine, then each further one folds in.
    for (std::size_t i = 1; i < shapes.size(); ++i) {
      plans_.emplace_back(out, std::vector<Shape>{i == 1 ? shapes[0] : out, shapes[i]});
    }
    return {TensorType{dtype, out}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    if (out.numel() == 0) return;
    if (ctx.inputs.size() == 1) {
      std::memcpy(out.raw_data(), ctx.inputs[0]->raw_data(), out.nbytes());
    } else {
      fn_(plans_[0], ctx.inputs[0]->raw_data(), ctx.inputs[1]->raw_data(), out.raw_data(), ctx.pool);
      for (std::size_t i = 2; i < ctx.inputs.size(); ++i) {
        fn_(plans_[i - 1], out.raw_data(), ctx.inputs[i]->raw_data(), out.raw_data(), ctx.pool);
      }
    }
    if (mean_) {
      const auto n = static_cast<double>(ctx.inputs.size());
      dispatch_all(out.dtype(), node_, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_floating_point_v<T> || kIsHalfType<T>) {
          T* p = mdata<T>(out);
          for (int64_t i = 0; i < out.numel(); ++i) p[i] = store<T>(static_cast<ComputeType<T>>(load(p[i]) / n));
        }
      });
    }
  }

 private:
  onnx::Node node_;
  BinaryFn (*select_)(DType, DType, const onnx::Node&);
  bool mean_;
  BinaryFn fn_ = nullptr;
  std::vector<BroadcastPlan> plans_;
};

template <Family kFamily>
void add(KernelRegistry& registry, const char* op, int since, BinaryFn (*select)(DType, DType, const onnx::Node&)) {
  registry.add("", op, since, [select](const onnx::Node& node, int) {
    return std::make_unique<BinaryKernel>(node, kFamily, select);
  });
}

}  // namespace

void register_binary_kernels(KernelRegistry& registry) {
  // Since opset 7 these broadcast numpy-style; older versions (axis/broadcast attributes) are not supported.
  add<Family::kArithmetic>(registry, "Add", 7, &select_numeric<AddOp>);
  add<Family::kArithmetic>(registry, "Sub", 7, &select_numeric<SubOp>);
  add<Family::kArithmetic>(registry, "Mul", 7, &select_numeric<MulOp>);
  add<Family::kDivision>(registry, "Div", 7, &select_numeric<DivOp>);
  add<Family::kPow>(registry, "Pow", 7, &select_pow);
  add<Family::kEquality>(registry, "Equal", 7, &select_compare<EqualOp, true>);
  add<Family::kOrdering>(registry, "Greater", 7, &select_compare<GreaterOp, false>);
  add<Family::kOrdering>(registry, "Less", 7, &select_compare<LessOp, false>);
  add<Family::kOrdering>(registry, "GreaterOrEqual", 12, &select_compare<GreaterOrEqualOp, false>);
  add<Family::kOrdering>(registry, "LessOrEqual", 12, &select_compare<LessOrEqualOp, false>);
  add<Family::kLogic>(registry, "And", 7, &select_logic<AndOp>);
  add<Family::kLogic>(registry, "Or", 7, &select_logic<OrOp>);
  add<Family::kLogic>(registry, "Xor", 7, &select_logic<XorOp>);
  registry.add("", "Mod", 10, [](const onnx::Node& node, int) {
    const bool fmod = node.attr_int("fmod", 0) != 0;
    return std::make_unique<BinaryKernel>(node, Family::kDivision, fmod ? &select_numeric<FmodOp> : &select_mod);
  });
  const std::pair<const char*, BinaryFn (*)(DType, DType, const onnx::Node&)> variadic[] = {
      {"Max", &select_numeric<MaxOp>}, {"Min", &select_numeric<MinOp>}, {"Sum", &select_numeric<AddOp>},
      {"Mean", &select_numeric<AddOp>}};
  for (const auto& entry : variadic) {
    // Plain variables, not a structured binding: clang 14 cannot capture one in a lambda.
    const char* op = entry.first;
    const auto select = entry.second;
    const bool mean = std::string(op) == "Mean";
    registry.add("", op, 8, [select, mean](const onnx::Node& node, int) {
      return std::make_unique<VariadicKernel>(node, select, mean);
    });
  }
}

}  // namespace detrq::runtime::kernels
