// Split: cuts the input along one axis into parts given by the split input (13+), the split attribute
// (before 13), num_outputs (18+) or equal parts for the node's outputs.
#include <cstring>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class SplitKernel final : public Kernel {
 public:
  SplitKernel(const onnx::Node& node, int opset) : node_(node), opset_(opset) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, opset_ >= 13 ? 2 : 1);
    const TensorType& in = ctx.input_types[0];
    const int64_t axis = normalize_axis(node_, node_.attr_int("axis", 0), static_cast<int64_t>(in.shape.size()));
    const int64_t dim = in.shape[static_cast<std::size_t>(axis)];
    const auto n_out = static_cast<int64_t>(node_.outputs.size());
    std::vector<int64_t> parts;
    if (opset_ >= 13 && ctx.input_present(1)) {
      parts = read_int_values(node_, require_constant(ctx, 1, "split"), "split");
    } else if (opset_ < 13 && node_.has_attr("split")) {
      parts = node_.attr_ints("split", {});
    } else {
      int64_t n = n_out;
      if (opset_ >= 18 && node_.has_attr("num_outputs")) n = node_.attr_int("num_outputs", n_out);
      if (n <= 0) throw_invalid(node_.describe(), "needs at least one output");
      if (opset_ >= 18) {
        // Opset 18: ceil-sized parts, the last one smaller when the axis does not divide evenly.
        const int64_t size = (dim + n - 1) / n;
        for (int64_t i = 0; i < n; ++i) parts.push_back(std::max<int64_t>(0, std::min(size, dim - i * size)));
      } else {
        if (dim % n != 0) {
          throw_invalid(node_.describe(), "axis of size " + std::to_string(dim) + " does not split into " + std::to_string(n) + " equal parts");
        }
        parts.assign(static_cast<std::size_t>(n), dim / n);
      }
    }
    if (static_cast<int64_t>(parts.size()) != n_out) {
      throw_invalid(node_.describe(), "has " + std::to_string(n_out) + " outputs but " + std::to_string(parts.size()) + " split sizes");
    }
    int64_t sum = 0;
    for (int64_t p : parts) {
      if (p < 0) throw_invalid(node_.describe(), "split size " + std::to_string(p) + " is negative");
      sum += p;
    }
    if (sum != dim) {
      throw_invalid(node_.describe(), "split sizes add up to " + std::to_string(sum) + ", the axis has " + std::to_string(dim));
    }
    outer_ = 1;
    for (int64_t d = 0; d < axis; ++d) outer_ *= in.shape[static_cast<std::size_t>(d)];
    int64_t inner = 1;
    for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < in.shape.size(); ++d) inner *= in.shape[d];
    part_bytes_.clear();
    for (int64_t p : parts) part_bytes_.push_back(static_cast<std::size_t>(p * inner) * core::dtype_size(in.dtype));
    std::vector<TensorType> out;
    for (int64_t p : parts) {
      Shape s = in.shape;
      s[static_cast<std::size_t>(axis)] = p;
      out.push_back(TensorType{in.dtype, s});
    }
    return out;
  }

  void run(RunContext& ctx) override {
    const Tensor& in = *ctx.inputs[0];
    if (in.numel() == 0) return;
    const std::size_t in_row = in.nbytes() / static_cast<std::size_t>(outer_);
    const auto* src = static_cast<const uint8_t*>(in.raw_data());
    std::size_t col = 0;
    for (std::size_t i = 0; i < ctx.outputs.size(); ++i) {
      const std::size_t out_row = part_bytes_[i];
      if (Tensor* out = ctx.outputs[i]) {  // an omitted output still occupies its columns
        auto* dst = static_cast<uint8_t*>(out->raw_data());
        for (int64_t r = 0; r < outer_ && out_row; ++r) {
          std::memcpy(dst + static_cast<std::size_t>(r) * out_row, src + static_cast<std::size_t>(r) * in_row + col, out_row);
        }
      }
      col += out_row;
    }
  }

 private:
  onnx::Node node_;
  int opset_;
  int64_t outer_ = 1;
  std::vector<std::size_t> part_bytes_;  // bytes of one outer row of each output
};

}  // namespace

void register_split_kernel(KernelRegistry& registry) {
  registry.add("", "Split", 2, [](const onnx::Node& node, int opset) { return std::make_unique<SplitKernel>(node, opset); });
}

}  // namespace detrq::runtime::kernels
