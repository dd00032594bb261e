// Shape: the input's dimensions as an int64 vector, optionally a [start, end) range of them (opset 15);
// Size: the input's element count as an int64 scalar.
#include <algorithm>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class ShapeKernel final : public Kernel {
 public:
  ShapeKernel(const onnx::Node& node, int opset) : node_(node), opset_(opset) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    const Shape& in = ctx.input_types[0].shape;
    const auto rank = static_cast<int64_t>(in.size());
    int64_t start = 0, end = rank;
    if (opset_ >= 15) {
      start = node_.attr_int("start", 0);
      end = node_.attr_int("end", rank);
    }
    // Negative values count from the back; both clamp to [0, rank] as the specification says.
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, 0, rank);
    dims_.assign(in.begin() + start, in.begin() + std::max(start, end));
    return {TensorType{DType::kInt64, {static_cast<int64_t>(dims_.size())}}};
  }

  void run(RunContext& ctx) override { std::copy(dims_.begin(), dims_.end(), mdata<int64_t>(*ctx.outputs[0])); }

 private:
  onnx::Node node_;
  int opset_;
  std::vector<int64_t> dims_;
};

class SizeKernel final : public Kernel {
 public:
  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    size_ = core::shape_numel(ctx.input_types[0].shape);
    return {TensorType{DType::kInt64, {}}};
  }
  void run(RunContext& ctx) override { mdata<int64_t>(*ctx.outputs[0])[0] = size_; }

 private:
  int64_t size_ = 0;
};

}  // namespace

void register_shape_kernel(KernelRegistry& registry) {
  registry.add("", "Shape", 1, [](const onnx::Node& node, int opset) { return std::make_unique<ShapeKernel>(node, opset); });
  registry.add("", "Size", 1, [](const onnx::Node&, int) { return std::make_unique<SizeKernel>(); });
}

}  // namespace detrq::runtime::kernels
