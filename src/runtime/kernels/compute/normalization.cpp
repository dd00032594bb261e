// BatchNormalization (inference form) and InstanceNormalization: per-channel affine normalization of
// [N, C, ...] tensors, with statistics given (batch norm) or computed per image and channel (instance norm).
#include <cmath>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

// Checks X [N, C, ...] and the per-channel parameters (inputs 1..count) of a normalization node.
void check_channel_params(const InferContext& ctx, std::size_t count) {
  const TensorType& x = ctx.input_types[0];
  require_dtype(ctx.node, x, {DType::kFloat32, DType::kFloat64}, "input X");
  if (x.shape.size() < 2) fail_node(ctx.node, "X must be [N, C, ...], got " + shape_to_string(x.shape));
  for (std::size_t i = 1; i <= count; ++i) {
    const TensorType& p = ctx.input_types[i];
    if (p.dtype != x.dtype) {
      unsupported_node(ctx.node, "input " + std::to_string(i) + " has dtype " + core::dtype_name(p.dtype) +
                                     ", X has " + core::dtype_name(x.dtype));
    }
    if (p.shape.size() != 1 || p.shape[0] != x.shape[1]) {
      fail_node(ctx.node, "input " + std::to_string(i) + " must be [C] = [" + std::to_string(x.shape[1]) + "], got " +
                              shape_to_string(p.shape));
    }
  }
}

class BatchNormalizationKernel final : public Kernel {
 public:
  explicit BatchNormalizationKernel(const onnx::Node& node) : node_(node), epsilon_(node.attr_float("epsilon", 1e-5F)) {
    if (node.attr_int("training_mode", 0) != 0) {
      unsupported_node(node, "training_mode=1 is not supported", "detrq runs inference graphs");
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 5);
    check_channel_params(ctx, 4);
    return {ctx.input_types[0]};
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
    const Tensor& xt = *ctx.inputs[0];
    const T* x = xt.data<T>();
    const T* scale = ctx.inputs[1]->data<T>();
    const T* bias = ctx.inputs[2]->data<T>();
    const T* mean = ctx.inputs[3]->data<T>();
    const T* var = ctx.inputs[4]->data<T>();
    T* y = ctx.outputs[0]->data<T>();
    const int64_t n = xt.dim(0), c = xt.dim(1), inner = product(xt.shape(), 2, xt.shape().size());
    ctx.pool.parallel_for(n * c, 1, [&](int64_t begin, int64_t end) {
      for (int64_t nc = begin; nc < end; ++nc) {
        const int64_t ch = nc % c;
        const T a = scale[ch] / std::sqrt(var[ch] + static_cast<T>(epsilon_));
        const T b = bias[ch] - mean[ch] * a;
        const T* xi = x + nc * inner;
        T* yi = y + nc * inner;
        for (int64_t i = 0; i < inner; ++i) yi[i] = xi[i] * a + b;
      }
    });
  }

  onnx::Node node_;
  float epsilon_;
};

class InstanceNormalizationKernel final : public Kernel {
 public:
  explicit InstanceNormalizationKernel(const onnx::Node& node)
      : node_(node), epsilon_(node.attr_float("epsilon", 1e-5F)) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 3);
    check_channel_params(ctx, 2);
    return {ctx.input_types[0]};
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
    const Tensor& xt = *ctx.inputs[0];
    const T* x = xt.data<T>();
    const T* scale = ctx.inputs[1]->data<T>();
    const T* bias = ctx.inputs[2]->data<T>();
    T* y = ctx.outputs[0]->data<T>();
    const int64_t n = xt.dim(0), c = xt.dim(1), inner = product(xt.shape(), 2, xt.shape().size());
    if (inner == 0) return;
    ctx.pool.parallel_for(n * c, 1, [&](int64_t begin, int64_t end) {
      for (int64_t nc = begin; nc < end; ++nc) {
        const int64_t ch = nc % c;
        const T* xi = x + nc * inner;
        T* yi = y + nc * inner;
        double sum = 0;
        for (int64_t i = 0; i < inner; ++i) sum += xi[i];
        const double mean = sum / static_cast<double>(inner);
        double sq = 0;
        for (int64_t i = 0; i < inner; ++i) sq += (xi[i] - mean) * (xi[i] - mean);
        const double inv = 1.0 / std::sqrt(sq / static_cast<double>(inner) + static_cast<double>(epsilon_));
        const T a = static_cast<T>(scale[ch] * inv);
        const T b = static_cast<T>(bias[ch] - mean * scale[ch] * inv);
        for (int64_t i = 0; i < inner; ++i) yi[i] = xi[i] * a + b;
      }
    });
  }

  onnx::Node node_;
  float epsilon_;
};

}  // namespace

std::unique_ptr<Kernel> make_batch_normalization_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<BatchNormalizationKernel>(node);
}

std::unique_ptr<Kernel> make_instance_normalization_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<InstanceNormalizationKernel>(node);
}

}  // namespace detrq::runtime::kernels
