// MaxPool (1-D to 3-D): kernel_shape, strides, dilations, pads, auto_pad and ceil_mode, with the
// optional Indices output (flat int64 index into X, row- or column-major per storage_order).
#include <limits>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class MaxPoolKernel final : public Kernel {
 public:
  explicit MaxPoolKernel(const onnx::Node& node)
      : node_(node),
        ceil_mode_(node.attr_int("ceil_mode", 0) != 0),
        storage_order_(node.attr_int("storage_order", 0)),
        kernel_(node.attr_ints("kernel_shape")) {
    if (kernel_.empty()) fail_node(node, "kernel_shape is required");
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 1);
    const TensorType& x = ctx.input_types[0];
    require_dtype(node_, x, {DType::kFloat32, DType::kFloat64, DType::kInt8, DType::kUInt8}, "input X");
    if (x.shape.size() < 3 || x.shape.size() > 5) {
      unsupported_node(node_, "X must be [N, C, D1 (, D2 (, D3))], got " + shape_to_string(x.shape));
    }
    axes_ = window_geometry(node_, Shape(x.shape.begin() + 2, x.shape.end()), kernel_, ceil_mode_);
    // Pad to 3 spatial axes with unit ones so one loop nest serves 1-D to 3-D.
    while (axes_.size() < 3) axes_.insert(axes_.begin(), WindowAxis{1, 1, 1, 1, 0, 0, 1});
    Shape out{x.shape[0], x.shape[1]};
    for (std::size_t i = 0; i < x.shape.size() - 2; ++i) out.push_back(axes_[3 - (x.shape.size() - 2) + i].out);
    spatial_ = x.shape.size() - 2;
    std::vector<TensorType> types{{x.dtype, out}};
    if (node_.outputs.size() > 1 && !node_.outputs[1].empty()) types.push_back({DType::kInt64, out});
    return types;
  }

  void run(RunContext& ctx) override {
    switch (ctx.inputs[0]->dtype()) {
      case DType::kFloat32: run_typed<float>(ctx); break;
      case DType::kFloat64: run_typed<double>(ctx); break;
      case DType::kInt8: run_typed<int8_t>(ctx); break;
      case DType::kUInt8: run_typed<uint8_t>(ctx); break;
      default: unsupported_node(node_, "dtype not supported");
    }
  }

 private:
  template <typename T>
  void run_typed(RunContext& ctx) {
    const Tensor& xt = *ctx.inputs[0];
    const T* x = xt.data<T>();
    T* y = ctx.outputs[0]->data<T>();
    int64_t* indices = ctx.outputs.size() > 1 && ctx.outputs[1] ? ctx.outputs[1]->data<int64_t>() : nullptr;
    const WindowAxis &ad = axes_[0], &ah = axes_[1], &aw = axes_[2];
    const int64_t planes = xt.dim(0) * xt.dim(1);
    const int64_t in_plane = ad.in * ah.in * aw.in, out_plane = ad.out * ah.out * aw.out;
    ctx.pool.parallel_for(planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const T* xp = x + p * in_plane;
        int64_t o = p * out_plane;
        for (int64_t od = 0; od < ad.out; ++od) {
          for (int64_t oh = 0; oh < ah.out; ++oh) {
            for (int64_t ow = 0; ow < aw.out; ++ow, ++o) {
              T best = std::numeric_limits<T>::lowest();
              int64_t best_d = -1, best_h = -1, best_w = -1;
              for (int64_t kd = 0; kd < ad.kernel; ++kd) {
                const int64_t id = od * ad.stride - ad.pad_begin + kd * ad.dilation;
                if (id < 0 || id >= ad.in) continue;
                for (int64_t kh = 0; kh < ah.kernel; ++kh) {
                  const int64_t ih = oh * ah.stride - ah.pad_begin + kh * ah.dilation;
                  if (ih < 0 || ih >= ah.in) continue;
                  for (int64_t kw = 0; kw < aw.kernel; ++kw) {
                    const int64_t iw = ow * aw.stride - aw.pad_begin + kw * aw.dilation;
                    if (iw < 0 || iw >= aw.in) continue;
                    const T v = xp[(id * ah.in + ih) * aw.in + iw];
                    if (best_d < 0 || v > best) {
                      best = v;
                      best_d = id;
                      best_h = ih;
                      best_w = iw;
                    }
                  }
                }
              }
              y[o] = best;
              if (indices) {
                // Column-major (storage_order 1) counts the first spatial axis fastest.
                int64_t flat;
                if (best_d < 0) {
                  flat = -1;
                } else if (storage_order_ == 0) {
                  flat = p * in_plane + (best_d * ah.in + best_h) * aw.in + best_w;
                } else if (spatial_ == 1) {
                  flat = p * in_plane + best_w;
                } else if (spatial_ == 2) {
                  flat = p * in_plane + best_h + best_w * ah.in;
                } else {
                  flat = p * in_plane + best_d + best_h * ad.in + best_w * ad.in * ah.in;
                }
                indices[o] = flat;
              }
            }
          }
        }
      }
    });
  }

  onnx::Node node_;
  bool ceil_mode_;
  int64_t storage_order_;
  std::vector<int64_t> kernel_;
  std::vector<WindowAxis> axes_;
  std::size_t spatial_ = 2;
};

}  // namespace

std::unique_ptr<Kernel> make_max_pool_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<MaxPoolKernel>(node);
}

}  // namespace detrq::runtime::kernels
