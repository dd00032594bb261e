// Unary elementwise operators: Cos, Sin, Exp, Erf, Log, Sqrt, Neg, Abs, Relu, Sigmoid, Tanh, Reciprocal,
// Floor, Ceil, Round, Sign, Softplus and Not.
#include <cmath>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/elementwise/float_activations.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

struct CosOp {
  template <typename T> T operator()(T x) const { return std::cos(x); }
};
struct SinOp {
  template <typename T> T operator()(T x) const { return std::sin(x); }
};
struct ExpOp {
  template <typename T> T operator()(T x) const { return std::exp(x); }
};
struct ErfOp {
  template <typename T> T operator()(T x) const { return std::erf(x); }
};
struct LogOp {
  template <typename T> T operator()(T x) const { return std::log(x); }
};
struct SqrtOp {
  template <typename T> T operator()(T x) const { return std::sqrt(x); }
};
struct TanhOp {
  template <typename T> T operator()(T x) const { return std::tanh(x); }
};
struct ReciprocalOp {
  template <typename T> T operator()(T x) const { return T(1) / x; }
};
struct FloorOp {
  template <typename T> T operator()(T x) const { return std::floor(x); }
};
struct CeilOp {
  template <typename T> T operator()(T x) const { return std::ceil(x); }
};
struct RoundOp {
  // Halves to even, like numpy and the specification (the default rounding mode).
  template <typename T> T operator()(T x) const { return std::nearbyint(x); }
};
struct SoftplusOp {
  // log(1 + e^x) without overflow for large x.
  template <typename T> T operator()(T x) const { return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
};
struct SignOp {
  template <typename T> T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) {
      return x > T(0) ? T(1) : T(0);
    } else {
      return x > T(0) ? T(1) : (x < T(0) ? T(-1) : (x == T(0) ? T(0) : x));  // NaN stays NaN
    }
  }
};
struct SigmoidOp {
  // Written so that neither branch overflows: exp of a non-positive number only.
  template <typename T> T operator()(T x) const {
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
  }
};
struct NegOp {
  template <typename T> T operator()(T x) const {
    if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(std::make_unsigned_t<T>(0) - static_cast<std::make_unsigned_t<T>>(x));  // wraps
    } else {
      return -x;
    }
  }
};
struct AbsOp {
  template <typename T> T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) {
      return x;
    } else if constexpr (std::is_integral_v<T>) {
      return x < 0 ? NegOp{}(x) : x;
    } else {
      return std::fabs(x);
    }
  }
};
struct ReluOp {
  template <typename T> T operator()(T x) const { return x > T(0) ? x : T(0); }
};
struct NotOp {
  bool operator()(bool x) const { return !x; }
};

using UnaryFn = void (*)(const void*, void*, int64_t, core::ThreadPool&, const CpuTarget&);

// float32 Erf, Exp and Sigmoid go through the vectorized loops of float_activations.h.
// The loop is named by a type rather than a function-pointer template argument: GCC 12 rejects the
// latter as a constant expression under -fsanitize=undefined.
struct ErfLoop {
  static void apply(const float* x, float* y, int64_t n, const CpuTarget& t) { erf_f32(x, y, n, t); }
};
struct ExpLoop {
  static void apply(const float* x, float* y, int64_t n, const CpuTarget& t) { exp_f32(x, y, n, t); }
};
struct SigmoidLoop {
  static void apply(const float* x, float* y, int64_t n, const CpuTarget& t) { sigmoid_f32(x, y, n, t); }
};
template <typename Loop>
void float_loop(const void* xv, void* yv, int64_t n, core::ThreadPool& pool, const CpuTarget& target) {
  const auto* x = static_cast<const float*>(xv);
  auto* y = static_cast<float*>(yv);
  pool.parallel_for(n, kElementwiseGrain / 4,
                    [&](int64_t begin, int64_t end) { Loop::apply(x + begin, y + begin, end - begin, target); });
}
template <typename F>
inline constexpr bool kVectorizedFloat =
    std::is_same_v<F, ErfOp> || std::is_same_v<F, ExpOp> || std::is_same_v<F, SigmoidOp>;
template <typename F>
UnaryFn vectorized_float_loop() {
  if constexpr (std::is_same_v<F, ErfOp>) {
    return &float_loop<ErfLoop>;
  } else if constexpr (std::is_same_v<F, ExpOp>) {
    return &float_loop<ExpLoop>;
  } else {
    return &float_loop<SigmoidLoop>;
  }
}

template <typename T, typename F>
void unary_loop(const void* xv, void* yv, int64_t n, core::ThreadPool& pool, const CpuTarget&) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  pool.parallel_for(n, kElementwiseGrain / 4, [&](int64_t begin, int64_t end) {
    const F f{};
    for (int64_t i = begin; i < end; ++i) y[i] = store<T>(f(load(x[i])));
  });
}

class UnaryKernel final : public Kernel {
 public:
  UnaryKernel(const onnx::Node& node, UnaryFn (*select)(DType, const onnx::Node&)) : node_(node), select_(select) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    fn_ = select_(ctx.input_types[0].dtype, node_);
    return {ctx.input_types[0]};
  }

  void run(RunContext& ctx) override {
    fn_(ctx.inputs[0]->raw_data(), ctx.outputs[0]->raw_data(), ctx.inputs[0]->numel(), ctx.pool, ctx.target);
  }

 private:
  onnx::Node node_;
  UnaryFn (*select_)(DType, const onnx::Node&);
  UnaryFn fn_ = nullptr;
};

// Which dtypes each operator accepts.
enum class Types { kFloat, kSignedAndFloat, kNumeric, kBool };

template <typename F, Types kTypes>
UnaryFn select(DType dtype, const onnx::Node& node) {
  switch (kTypes) {
    case Types::kFloat: require_dtype(node, "input X", dtype, float_dtypes()); break;
    case Types::kSignedAndFloat:
      require_dtype(node, "input X", dtype,
                    {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt8, DType::kInt16,
                     DType::kInt32, DType::kInt64});
      break;
    case Types::kNumeric: require_dtype(node, "input X", dtype, numeric_dtypes()); break;
    case Types::kBool: require_dtype(node, "input X", dtype, {DType::kBool}); break;
  }
  return dispatch_all(dtype, node, [](auto tag) -> UnaryFn {
    using T = typename decltype(tag)::type;
    constexpr bool kFloat = std::is_floating_point_v<T> || kIsHalfType<T>;
    if constexpr (kTypes == Types::kBool) {
      if constexpr (std::is_same_v<T, bool>) return &unary_loop<bool, F>;
      return nullptr;
    } else if constexpr (std::is_same_v<T, bool> || (kTypes == Types::kFloat && !kFloat) ||
                         (kTypes == Types::kSignedAndFloat && std::is_unsigned_v<T>)) {
      return nullptr;  // refused by require_dtype above
    } else {
      if constexpr (std::is_same_v<T, float> && kVectorizedFloat<F>) {
        return vectorized_float_loop<F>();
      } else {
        return &unary_loop<T, F>;
      }
    }
  });
}

template <typename F, Types kTypes>
void add(KernelRegistry& registry, const char* op, int since) {
  registry.add("", op, since, [](const onnx::Node& node, int) {
    return std::make_unique<UnaryKernel>(node, &select<F, kTypes>);
  });
}

}  // namespace

void register_unary_kernels(KernelRegistry& registry) {
  add<CosOp, Types::kFloat>(registry, "Cos", 7);
  add<SinOp, Types::kFloat>(registry, "Sin", 7);
  add<ExpOp, Types::kFloat>(registry, "Exp", 6);
  add<ErfOp, Types::kFloat>(registry, "Erf", 9);
  add<LogOp, Types::kFloat>(registry, "Log", 6);
  add<SqrtOp, Types::kFloat>(registry, "Sqrt", 6);
  add<TanhOp, Types::kFloat>(registry, "Tanh", 6);
  add<ReciprocalOp, Types::kFloat>(registry, "Reciprocal", 6);
  add<FloorOp, Types::kFloat>(registry, "Floor", 6);
  add<CeilOp, Types::kFloat>(registry, "Ceil", 6);
  add<SigmoidOp, Types::kFloat>(registry, "Sigmoid", 6);
  add<RoundOp, Types::kFloat>(registry, "Round", 11);
  add<SoftplusOp, Types::kFloat>(registry, "Softplus", 1);
  add<SignOp, Types::kNumeric>(registry, "Sign", 9);
  add<NegOp, Types::kSignedAndFloat>(registry, "Neg", 6);
  add<AbsOp, Types::kNumeric>(registry, "Abs", 6);
  add<ReluOp, Types::kSignedAndFloat>(registry, "Relu", 6);
  add<NotOp, Types::kBool>(registry, "Not", 1);
}

}  // namespace detrq::runtime::kernels
