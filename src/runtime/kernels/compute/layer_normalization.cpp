// LayerNormalization (opset 17): normalizes over the axes from `axis` to the last, then applies
// Scale and the optional B; the optional Mean and InvStdDev outputs keep the reduced axes as 1.
// com.detrq QLayerNormalization (passes/fuse_layernorm_quantize.cpp) is the same float32 normalization
// followed by the QuantizeLinear that read it: inputs X, Scale, B ("" when absent), y_scale, y_zero_point
// (one each, int8 or uint8), output the codes; each row is normalized into the thread's scratch and
// quantized from there with QuantizeLinear's arithmetic (requantize.h), the bits of the two nodes.
#include <atomic>
#include <cmath>
#include <memory>
#include <type_traits>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/quantization/requantize.h"

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
  LayerNormalizationKernel(const onnx::Node& node, bool quantize)
      : node_(node),
        quantize_(quantize),
        axis_attr_(node.attr_int("axis", -1)),
        epsilon_(node.attr_float("epsilon", 1e-5F)),
        stash_type_(node.attr_int("stash_type", 1)) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 2);
    const TensorType& x = ctx.input_types[0];
    require_dtype(node_, x, quantize_ ? std::initializer_list<DType>{DType::kFloat32}
                                      : std::initializer_list<DType>{DType::kFloat32, DType::kFloat64},
                  "input X");
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
    if (quantize_) return {infer_codes(ctx, x)};
    Shape stat_shape = x.shape;
    for (std::size_t d = static_cast<std::size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
    const DType stat_dtype = stash_type_ == 1 ? DType::kFloat32 : x.dtype;
    std::vector<TensorType> out{x};
    if (node_.outputs.size() > 1) out.push_back({stat_dtype, stat_shape});
    if (node_.outputs.size() > 2) out.push_back({stat_dtype, stat_shape});
    return out;
  }

  // QLayerNormalization: each thread's row of floats before it is quantized.
  std::size_t scratch_bytes(int threads) const override {
    return quantize_ ? static_cast<std::size_t>(threads * size_) * sizeof(float) : 0;
  }

  void run(RunContext& ctx) override {
    if (ctx.inputs[0]->dtype() == DType::kFloat32) {
      run_typed<float>(ctx);
    } else {
      run_typed<double>(ctx);
    }
  }

 private:
  // The codes output of QLayerNormalization, checking its quantization inputs.
  TensorType infer_codes(const InferContext& ctx, const TensorType& x) {
    if (ctx.input_types.size() != 5 || !ctx.input_values[3] || !ctx.input_values[4]) {
      fail_node(node_, "QLayerNormalization needs X, Scale, B, and a constant y_scale and y_zero_point");
    }
    const Tensor& s = *ctx.input_values[3];
    const Tensor& z = *ctx.input_values[4];
    if (s.dtype() != DType::kFloat32 || s.numel() != 1 || z.numel() != 1 ||
        (z.dtype() != DType::kInt8 && z.dtype() != DType::kUInt8)) {
      fail_node(node_, "QLayerNormalization quantizes per tensor: one float32 y_scale, one int8/uint8 zero point");
    }
    out_scale_ = s.data<float>()[0];
    out_signed_ = z.dtype() == DType::kInt8;
    out_zero_point_ = out_signed_ ? z.data<int8_t>()[0] : z.data<uint8_t>()[0];
    return {z.dtype(), x.shape};
  }

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
    // The normalized rows go to the output, or (QLayerNormalization) to the thread's scratch row first.
    T* y = quantize_ ? nullptr : ctx.outputs[0]->template data<T>();
    auto* codes = quantize_ ? static_cast<uint8_t*>(ctx.outputs[0]->raw_data()) : nullptr;
    T* rows_scratch = quantize_ ? reinterpret_cast<T*>(ctx.scratch.data()) : nullptr;
    Tensor* mean_out = ctx.outputs.size() > 1 ? ctx.outputs[1] : nullptr;
    Tensor* inv_out = ctx.outputs.size() > 2 ? ctx.outputs[2] : nullptr;
    const int64_t n = size_;
    if (n == 0) return;
    const T eps = static_cast<T>(epsilon_);
    const int64_t grain = std::max<int64_t>(1, 8192 / n);
    std::atomic<int64_t> next{0};
    // One chunk per thread slot (its scratch row), taking rows `grain` at a time.
    ctx.pool.parallel_for(ctx.pool.size(), 1, [&](int64_t slot, int64_t) {
      for (int64_t begin = next.fetch_add(grain); begin < rows_; begin = next.fetch_add(grain)) {
        for (int64_t r = begin; r < std::min(rows_, begin + grain); ++r) {
          const T* xr = x + r * n;
          T* yr = quantize_ ? rows_scratch + slot * n : y + r * n;
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
          if constexpr (std::is_same_v<T, float>) {
            if (quantize_) quantize_run(yr, codes + r * n, out_signed_, n, out_scale_, out_zero_point_, ctx.target);
          }
        }
      }
    });
  }

  onnx::Node node_;
  bool quantize_;  // QLayerNormalization
  float out_scale_ = 1.0F;
  int32_t out_zero_point_ = 0;
  bool out_signed_ = true;
  int64_t axis_attr_;
  float epsilon_;
  int64_t stash_type_;
  int64_t rows_ = 0, size_ = 0;
  bool has_bias_ = false, scale_broadcast_ = false, bias_broadcast_ = false;
};

}  // namespace

std::unique_ptr<Kernel> make_layer_normalization_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<LayerNormalizationKernel>(node, false);
}

std::unique_ptr<Kernel> make_qlayer_normalization_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<LayerNormalizationKernel>(node, true);
}

}  // namespace detrq::runtime::kernels
