// Slice: a strided window of the input, from attributes (before opset 10) or constant inputs with
// negative steps and the specification's clamping of out-of-range starts and ends.
#include <algorithm>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/shape/strided_copy.h"

namespace detrq::runtime::kernels {
namespace {

class SliceKernel final : public Kernel {
 public:
  SliceKernel(const onnx::Node& node, int opset) : node_(node), opset_(opset) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    std::vector<int64_t> starts, ends, axes, steps;
    if (opset_ < 10) {
      require_input_count(ctx, 1, 1);
      starts = node_.attr_ints("starts", {});
      ends = node_.attr_ints("ends", {});
      axes = node_.attr_ints("axes", {});
    } else {
      require_input_count(ctx, 3, 5);
      starts = read_int_values(node_, require_constant(ctx, 1, "starts"), "starts");
      ends = read_int_values(node_, require_constant(ctx, 2, "ends"), "ends");
      if (ctx.input_present(3)) axes = read_int_values(node_, require_constant(ctx, 3, "axes"), "axes");
      if (ctx.input_present(4)) steps = read_int_values(node_, require_constant(ctx, 4, "steps"), "steps");
    }
    const Shape& in = ctx.input_types[0].shape;
    const auto rank = static_cast<int64_t>(in.size());
    if (axes.empty()) {
      for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      throw_invalid(node_.describe(), "starts, ends, axes and steps have different lengths");
    }
    start_.assign(in.size(), 0);
    step_.assign(in.size(), 1);
    Shape out = in;
    std::vector<bool> seen(in.size(), false);
    for (std::size_t i = 0; i < starts.size(); ++i) {
      const auto axis = static_cast<std::size_t>(normalize_axis(node_, axes[i], rank));
      if (seen[axis]) throw_invalid(node_.describe(), "axis " + std::to_string(axis) + " is sliced twice");
      seen[axis] = true;
      const int64_t dim = in[axis];
      const int64_t step = steps[i];
      if (step == 0) throw_invalid(node_.describe(), "step is 0");
      int64_t start = starts[i], end = ends[i];
      if (start < 0) start += dim;
      if (end < 0) end += dim;
      int64_t len = 0;
      if (dim == 0) {
        // nothing to take
      } else if (step > 0) {
        start = std::clamp<int64_t>(start, 0, dim);
        end = std::clamp<int64_t>(end, 0, dim);
        if (end > start) len = (end - start + step - 1) / step;
      } else {
        start = std::clamp<int64_t>(start, 0, dim - 1);
        end = std::clamp<int64_t>(end, -1, dim - 1);
        if (start > end) len = (start - end + (-step) - 1) / (-step);
      }
      out[axis] = len;
      start_[axis] = len > 0 ? start : 0;
      step_[axis] = step;
    }
    // The element strides of the slice in the input and its first element, for run().
    const std::vector<int64_t> contiguous = contiguous_strides(ctx.input_types[0].shape);
    strides_.assign(contiguous.size(), 0);
    base_ = 0;
    for (std::size_t d = 0; d < contiguous.size(); ++d) {
      strides_[d] = contiguous[d] * step_[d];
      base_ += start_[d] * contiguous[d];
    }
    return {TensorType{ctx.input_types[0].dtype, out}};
  }

  void run(RunContext& ctx) override {
    const Tensor& in = *ctx.inputs[0];
    Tensor& out = *ctx.outputs[0];
    if (out.numel() == 0) return;
    const std::size_t esize = core::dtype_size(in.dtype());
    strided_copy(esize, out.shape(), strides_,
                 static_cast<const uint8_t*>(in.raw_data()) + base_ * static_cast<int64_t>(esize), out.raw_data(),
                 ctx.pool);
  }

 private:
  onnx::Node node_;
  int opset_;
  std::vector<int64_t> start_, step_;  // per input dimension
  std::vector<int64_t> strides_;       // start_ and step_ as element strides in the input
  int64_t base_ = 0;
};

}  // namespace

void register_slice_kernel(KernelRegistry& registry) {
  registry.add("", "Slice", 1, [](const onnx::Node& node, int opset) { return std::make_unique<SliceKernel>(node, opset); });
}

}  // namespace detrq::runtime::kernels
