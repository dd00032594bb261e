// Softmax: opset >= 13 normalizes along one axis; before 13 the input is coerced to 2-D
// [prod(dims < axis), prod(dims >= axis)] and each row is normalized.
#include <cmath>
#include <limits>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/math/vector_math.h"

namespace detrq::runtime::kernels {
namespace {

// Softmax over `len` values spaced `stride` apart (the reference; float32 rows use softmax_row).
template <typename T>
void softmax_strided(const T* x, T* y, int64_t len, int64_t stride) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < len; ++i) mx = std::max(mx, x[i * stride]);
  T sum = 0;
  for (int64_t i = 0; i < len; ++i) {
    y[i * stride] = std::exp(x[i * stride] - mx);
    sum += y[i * stride];
  }
  for (int64_t i = 0; i < len; ++i) y[i * stride] /= sum;
}

class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(const onnx::Node& node, int opset)
      : node_(node), opset_(opset), axis_attr_(node.attr_int("axis", opset >= 13 ? -1 : 1)) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 1);
    const TensorType& x = ctx.input_types[0];
    require_dtype(node_, x, {DType::kFloat32, DType::kFloat64}, "input");
    const int rank = static_cast<int>(x.shape.size());
    if (rank == 0) {
      outer_ = inner_ = len_ = 1;
      return {x};
    }
    const int axis = static_cast<int>(normalize_axis(node_, axis_attr_, rank));
    if (opset_ >= 13) {
      outer_ = product(x.shape, 0, static_cast<std::size_t>(axis));
      len_ = x.shape[static_cast<std::size_t>(axis)];
      inner_ = product(x.shape, static_cast<std::size_t>(axis) + 1, x.shape.size());
    } else {
      outer_ = product(x.shape, 0, static_cast<std::size_t>(axis));
      len_ = product(x.shape, static_cast<std::size_t>(axis), x.shape.size());
      inner_ = 1;
    }
    return {x};
  }

  void run(RunContext& ctx) override {
    if (ctx.inputs[0]->dtype() == DType::kFloat32) {
      run_typed<float>(ctx);
    } else {
      run_typed<double>(ctx);
    }
  }

 private:
  template <typename T>
  void run_typed(RunContext& ctx) {
    const T* x = ctx.inputs[0]->template data<T>();
    T* y = ctx.outputs[0]->template data<T>();
    const int64_t rows = outer_ * inner_;
    if (rows == 0 || len_ == 0) return;
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, len_));
    ctx.pool.parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t o = r / inner_, i = r % inner_;
        const int64_t base = o * len_ * inner_ + i;
        if constexpr (std::is_same_v<T, float>) {
          if (inner_ == 1) {
            softmax_row(x + base, y + base, len_, ctx.target);
            continue;
          }
        }
        softmax_strided(x + base, y + base, len_, inner_);
      }
    });
  }

  onnx::Node node_;
  int opset_;
  int64_t axis_attr_;
  int64_t outer_ = 1, len_ = 1, inner_ = 1;
};

}  // namespace

std::unique_ptr<Kernel> make_softmax_kernel(const onnx::Node& node, int opset) {
  return std::make_unique<SoftmaxKernel>(node, opset);
}

}  // namespace detrq::runtime::kernels
