// LayerNormalization (opset 17): normalizes over the axes from `axis` to the last, then applies
// Scale and the optional B; the optional Mean and InvStdDev outputs keep the reduced axes as 1.
#include <cmath>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

// Sum of n values in 8 independent lanes, so the compiler can vectorize it without reassociating.
template <typename T>
T lane_sum(const T* x, int64_t n) {
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += x[i + j];
  }
  T s = 0;
  for (int j = 0; j < 8; ++j) s += acc[j];
  for (; i < n; ++i) s += x[i];
  return s;
}

template <typename T>
T lane_sum_squares(const T* x, int64_t n, T mean) {
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) {
      const T d = x[i + j] - mean;
      acc[j] += d * d;
    }
  }
  T s = 0;
  for (int j = 0; j < 8; ++j) s += acc[j];
  for (; i < n; ++i) s += (x[i] - mean) * (x[i] - mean);
  return s;
}

class LayerNormalizationKernel final : public Kernel {
 public:
  explicit LayerNormalizationKernel(const onnx::Node& node)
      : node_(node),
        axis_attr_(node.attr_int("axis", -1)),
        epsilon_(node.attr_float("epsilon", 1e-5F)),
        stash_type_(node.attr_int("stash_type", 1)) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 2);
    const TensorType& x = ctx.input_types[0];
    require_dtype(node_, x, {DType::kFloat32, DType::kFloat64}, "input X");
    const int rank = static_cast<int>(x.shape.size());
    if (rank == 0) fail_node(node_, "X must have rank >= 1");
    const int axis = static_cast<int>(normalize_axis(node_, axis_attr_, rank));
    rows_ = product(x.shape, 0, static_cast<std::size_t>(axis));
    size_ = product(x.shape, static_cast<std::size_t>(axis), x.shape.size());
    for (std::size_t i = 1; i < 3; ++i) {
      if (!ctx.input_present(i)) continue;
      const TensorType& p = ctx.input_types[i];
      if (p.dtype != x.dtype) fail_node(node_, std::string(i == 1 ? "Scale" : "B") + " has a different dtype than X");
      const int64_t numel = shape_numel(p.shape);
      if (numel != size_ && numel != 1) {
        fail_node(node_, std::string(i == 1 ? "Scale" : "B") + " of shape " + shape_to_string(p.shape) +
                             " does not match the normalized shape of " + shape_to_string(x.shape) + " from axis " +
                             std::to_string(axis));
      }
      (i == 1 ? scale_broadcast_ : bias_broadcast_) = numel == 1 && size_ != 1;
    }
    has_bias_ = ctx.input_present(2);
    Shape stat_shape = x.shape;
    for (std::size_t d = static_cast<std::size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
    const DType stat_dtype = stash_type_ == 1 ? DType::kFloat32 : x.dtype;
    std::vector<TensorType> out{x};
    if (node_.outputs.size() > 1) out.push_back({stat_dtype, stat_shape});
    if (node_.outputs.size() > 2) out.push_back({stat_dtype, stat_shape});
    return out;
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
  static void store_stat(Tensor* t, int64_t i, double v) {
    if (!t) return;
    if (t->dtype() == DType::kFloat32) {
      t->data<float>()[i] = static_cast<float>(v);
    } else {
      t->data<double>()[i] = v;
    }
  }

  template <typename T>
  void run_typed(RunContext& ctx) {
    const T* x = ctx.inputs[0]->template data<T>();
    const T* scale = ctx.inputs[1]->template data<T>();
    const T* bias = has_bias_ && ctx.inputs[2] ? ctx.inputs[2]->template data<T>() : nullptr;
    T* y = ctx.outputs[0]->template data<T>();
    Tensor* mean_out = ctx.outputs.size() > 1 ? ctx.outputs[1] : nullptr;
    Tensor* inv_out = ctx.outputs.size() > 2 ? ctx.outputs[2] : nullptr;
    const int64_t n = size_;
    if (n == 0) return;
    const T eps = static_cast<T>(epsilon_);
    ctx.pool.parallel_for(rows_, std::max<int64_t>(1, 8192 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        const T mean = lane_sum<T>(xr, n) / static_cast<T>(n);
        const T var = lane_sum_squares<T>(xr, n, mean) / static_cast<T>(n);
        const T inv = T(1) / std::sqrt(var + eps);
        if (!scale_broadcast_ && !bias_broadcast_) {
          if (bias) {
            for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - mean) * inv * scale[i] + bias[i];
          } else {
            for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - mean) * inv * scale[i];
          }
        } else {
          for (int64_t i = 0; i < n; ++i) {
            const T s = scale[scale_broadcast_ ? 0 : i];
            const T b = bias ? bias[bias_broadcast_ ? 0 : i] : T(0);
            yr[i] = (xr[i] - mean) * inv * s + b;
          }
        }
        store_stat<T>(mean_out, r, static_cast<double>(mean));
        store_stat<T>(inv_out, r, static_cast<double>(inv));
      }
    });
  }

  onnx::Node node_;
  int64_t axis_attr_;
  float epsilon_;
  int64_t stash_type_;
  int64_t rows_ = 0, size_ = 0;
  bool has_bias_ = false, scale_broadcast_ = false, bias_broadcast_ = false;
};

}  // namespace

std::unique_ptr<Kernel> make_layer_normalization_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<LayerNormalizationKernel>(node);
}

}  // namespace detrq::runtime::kernels
