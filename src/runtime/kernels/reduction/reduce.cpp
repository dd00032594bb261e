// ReduceSum, ReduceMean, ReduceMax, ReduceMin and ReduceProd over any set of axes, with keepdims and noop_with_empty_axes, axes
// from the attribute or (ReduceSum from opset 13, the others from 18) the input.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/shape/strided_copy.h"

namespace detrq::runtime::kernels {
namespace {

enum class ReduceOp { kSum, kMean, kMax, kMin, kProd };

// Accumulator type: double for float32/64 sums over a contiguous run (precision at no speed cost there),
// float for the half types, the type itself for integers.
template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, ComputeType<T>>;

class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(const onnx::Node& node, int opset, ReduceOp op, int axes_input_since)
      : node_(node), opset_(opset), op_(op), axes_input_since_(axes_input_since) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    const bool axes_from_input = opset_ >= axes_input_since_;
    require_input_count(ctx, 1, axes_from_input ? 2 : 1);
    const TensorType& x = ctx.input_types[0];
    std::vector<DType> allowed = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
                                  DType::kInt32,   DType::kInt64,   DType::kUInt32,  DType::kUInt64};
    if (op_ == ReduceOp::kMax || op_ == ReduceOp::kMin) allowed.insert(allowed.end(), {DType::kInt8, DType::kUInt8});
    require_dtype(node_, "data", x.dtype, allowed);
    std::vector<int64_t> axes;
    if (axes_from_input) {
      if (ctx.input_present(1)) axes = read_int_values(node_, require_constant(ctx, 1, "axes"), "axes");
    } else {
      axes = node_.attr_ints("axes", {});
    }
    const bool keepdims = node_.attr_int("keepdims", 1) != 0;
    const bool noop = node_.attr_int("noop_with_empty_axes", 0) != 0;
    const auto rank = static_cast<int64_t>(x.shape.size());
    reduced_.assign(x.shape.size(), axes.empty());
    identity_ = axes.empty() && noop;
    if (identity_) reduced_.assign(x.shape.size(), false);
    for (int64_t a : axes) {
      const auto d = static_cast<std::size_t>(normalize_axis(node_, a, rank));
      if (reduced_[d]) throw_invalid(node_.describe(), "axis " + std::to_string(a) + " is listed twice");
      reduced_[d] = true;
    }
    Shape out;
    for (std::size_t d = 0; d < x.shape.size(); ++d) {
      if (!reduced_[d]) {
        out.push_back(x.shape[d]);
      } else if (keepdims) {
        out.push_back(1);
      }
    }
    plan(x.shape);
    return {TensorType{x.dtype, out}};
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    Tensor& y = *ctx.outputs[0];
    dispatch_all(x.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>) compute<T>(x, y, ctx.pool);
    });
  }

 private:
  // Puts the reduced axes last: when they already are one contiguous block after the kept ones (or before
  // a trailing kept block) no copy is needed; otherwise a transposed copy is reduced instead.
  void plan(const Shape& shape) {
    count_ = 1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (reduced_[d]) count_ *= shape[d];
    }
    // Dims of size 1 do not matter for layout: drop them, then look at the keep/reduce pattern.
    std::vector<std::size_t> dims;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] != 1) dims.push_back(d);
    }
    int blocks = 0;
    for (std::size_t i = 0; i < dims.size(); ++i) {
      if (reduced_[dims[i]] && (i == 0 || !reduced_[dims[i - 1]])) ++blocks;
    }
    outer_ = 1;
    inner_ = 1;
    permute_ = blocks > 1;
    if (!permute_) {
      bool seen_reduced = false;
      for (std::size_t d : dims) {
        if (reduced_[d]) {
          seen_reduced = true;
        } else {
          (seen_reduced ? inner_ : outer_) *= shape[d];
        }
      }
      return;
    }
    // Transposed view: kept dims (in order) then reduced dims.
    const std::vector<int64_t> contiguous = contiguous_strides(shape);
    perm_shape_.clear();
    perm_strides_.clear();
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t d = 0; d < shape.size(); ++d) {
        if (reduced_[d] == (pass == 1)) {
          perm_shape_.push_back(shape[d]);
          perm_strides_.push_back(contiguous[d]);
          if (pass == 0) outer_ *= shape[d];
        }
      }
    }
  }

  template <typename T>
  void compute(const Tensor& x, Tensor& y, core::ThreadPool& pool) {
    if (identity_) {
      if (x.nbytes()) std::copy_n(cdata<T>(x), x.numel(), mdata<T>(y));
      return;
    }
    const T* in = cdata<T>(x);
    if (permute_) {
      // Allocated on the first run only: shapes are static.
      if (!scratch_.defined() || scratch_.dtype() != x.dtype() || scratch_.shape() != perm_shape_) {
        scratch_ = Tensor::empty(x.dtype(), perm_shape_);
      }
      strided_copy(sizeof(T), perm_shape_, perm_strides_, in, scratch_.raw_data(), pool);
      in = cdata<T>(scratch_);
    }
    T* out = mdata<T>(y);
    const int64_t outer = outer_, inner = inner_, count = count_;
    const ReduceOp op = op_;
    using C = ComputeType<T>;
    auto finish = [&](auto acc) -> T {
      if (op == ReduceOp::kMean) {
        if constexpr (std::is_integral_v<C>) {
          return store<T>(count ? acc / static_cast<decltype(acc)>(count) : 0);
        } else {
          return store<T>(acc / static_cast<decltype(acc)>(count));
        }
      }
      return store<T>(acc);
    };
    constexpr bool kInf = std::numeric_limits<C>::has_infinity;
    const C lowest = kInf ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::lowest();
    const C highest = kInf ? std::numeric_limits<C>::infinity() : std::numeric_limits<C>::max();
    // NaN propagates through Max and Min (once the accumulator is NaN no comparison replaces it).
    auto max_op = [](C a, C v) { return v > a || v != v ? v : a; };
    auto min_op = [](C a, C v) { return v < a || v != v ? v : a; };
    auto sum_op = [](auto a, auto v) { return static_cast<decltype(a)>(a + v); };
    auto prod_op = [](auto a, auto v) { return static_cast<decltype(a)>(a * v); };
    switch (op) {
      case ReduceOp::kMax: reduce_rows<T, C>(in, out, outer, count, inner, lowest, max_op, finish, pool); break;
      case ReduceOp::kMin: reduce_rows<T, C>(in, out, outer, count, inner, highest, min_op, finish, pool); break;
      case ReduceOp::kSum:
      case ReduceOp::kMean: reduce_rows<T, Acc<T>>(in, out, outer, count, inner, Acc<T>(0), sum_op, finish, pool); break;
      case ReduceOp::kProd: reduce_rows<T, Acc<T>>(in, out, outer, count, inner, Acc<T>(1), prod_op, finish, pool); break;
    }
  }

  // out[o, i] = finish(fold of in[o, r, i] over r), with accumulator type A.
  template <typename T, typename A, typename Combine, typename Finish>
  static void reduce_rows(const T* in, T* out, int64_t outer, int64_t count, int64_t inner, A init, Combine combine,
                          Finish finish, core::ThreadPool& pool) {
    if (inner == 1) {
      // Each output folds one contiguous run.
      pool.parallel_for(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(count, 1)), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const T* row = in + o * count;
          A acc = init;
          for (int64_t i = 0; i < count; ++i) acc = combine(acc, static_cast<A>(load(row[i])));
          out[o] = finish(acc);
        }
      });
      return;
    }
    // Reduced block in the middle: fold whole rows of `inner` elements (vectorizes across inner).
    using C = ComputeType<T>;
    pool.parallel_for(outer, 1, [&](int64_t b, int64_t e) {
      std::vector<C> acc(static_cast<std::size_t>(inner));
      for (int64_t o = b; o < e; ++o) {
        std::fill(acc.begin(), acc.end(), static_cast<C>(init));
        C* a = acc.data();
        for (int64_t r = 0; r < count; ++r) {
          const T* row = in + (o * count + r) * inner;
          for (int64_t i = 0; i < inner; ++i) a[i] = static_cast<C>(combine(a[i], load(row[i])));
        }
        for (int64_t i = 0; i < inner; ++i) out[o * inner + i] = finish(a[i]);
      }
    });
  }

  onnx::Node node_;
  int opset_;
  ReduceOp op_;
  int axes_input_since_;
  std::vector<bool> reduced_;
  bool identity_ = false;
  bool permute_ = false;
  int64_t outer_ = 1, inner_ = 1, count_ = 1;
  Shape perm_shape_;
  std::vector<int64_t> perm_strides_;
  Tensor scratch_;
};

void add(KernelRegistry& registry, const char* op_type, ReduceOp op, int axes_input_since) {
  registry.add("", op_type, 1, [op, axes_input_since](const onnx::Node& node, int opset) {
    return std::make_unique<ReduceKernel>(node, opset, op, axes_input_since);
  });
}

}  // namespace

void register_reduce_kernels(KernelRegistry& registry) {
  add(registry, "ReduceSum", ReduceOp::kSum, 13);
  add(registry, "ReduceMean", ReduceOp::kMean, 18);
  add(registry, "ReduceMax", ReduceOp::kMax, 18);
  add(registry, "ReduceMin", ReduceOp::kMin, 18);
  add(registry, "ReduceProd", ReduceOp::kProd, 18);
}

}  // namespace detrq::runtime::kernels
