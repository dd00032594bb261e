// Expand (broadcast to a shape) and Tile (repeat along each axis), both as strided copies with zero strides.
#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/shape/strided_copy.h"

namespace detrq::runtime::kernels {
namespace {

class ExpandKernel final : public Kernel {
 public:
  explicit ExpandKernel(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 2, 2);
    const Shape target = read_int_values(node_, require_constant(ctx, 1, "shape"), "shape");
    const Shape& in = ctx.input_types[0].shape;
    const Shape out = broadcast_shapes(node_, {in, target});
    // Input strides per output dim: 0 where the input is broadcast (size 1 or missing).
    strides_.assign(out.size(), 0);
    const std::vector<int64_t> contiguous = contiguous_strides(in);
    const std::size_t pad = out.size() - in.size();
    for (std::size_t d = pad; d < out.size(); ++d) strides_[d] = in[d - pad] == 1 ? 0 : contiguous[d - pad];
    return {TensorType{ctx.input_types[0].dtype, out}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    strided_copy(core::dtype_size(out.dtype()), out.shape(), strides_, ctx.inputs[0]->raw_data(), out.raw_data(), ctx.pool);
  }

 private:
  onnx::Node node_;
  std::vector<int64_t> strides_;
};

class TileKernel final : public Kernel {
 public:
  explicit TileKernel(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 2, 2);
    const std::vector<int64_t> repeats = read_int_values(node_, require_constant(ctx, 1, "repeats"), "repeats");
    const Shape& in = ctx.input_types[0].shape;
    if (repeats.size() != in.size()) {
      throw_invalid(node_.describe(), "has " + std::to_string(repeats.size()) + " repeats for a rank " + std::to_string(in.size()) + " input");
    }
    // The output [r0*d0, r1*d1, ...] is, row-major, the same memory as [r0, d0, r1, d1, ...] where the repeat
    // dims have stride 0 in the input.
    const std::vector<int64_t> contiguous = contiguous_strides(in);
    Shape out;
    view_shape_.clear();
    strides_.clear();
    for (std::size_t d = 0; d < in.size(); ++d) {
      if (repeats[d] < 0) throw_invalid(node_.describe(), "repeat " + std::to_string(repeats[d]) + " is negative");
      out.push_back(in[d] * repeats[d]);
      view_shape_.push_back(repeats[d]);
      view_shape_.push_back(in[d]);
      strides_.push_back(0);
      strides_.push_back(contiguous[d]);
    }
    return {TensorType{ctx.input_types[0].dtype, out}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    strided_copy(core::dtype_size(out.dtype()), view_shape_, strides_, ctx.inputs[0]->raw_data(), out.raw_data(), ctx.pool);
  }

 private:
  onnx::Node node_;
  Shape view_shape_;
  std::vector<int64_t> strides_;
};

}  // namespace

void register_expand_tile_kernels(KernelRegistry& registry) {
  registry.add("", "Expand", 8, [](const onnx::Node& node, int) { return std::make_unique<ExpandKernel>(node); });
  registry.add("", "Tile", 6, [](const onnx::Node& node, int) { return std::make_unique<TileKernel>(node); });
}

}  // namespace detrq::runtime::kernels
