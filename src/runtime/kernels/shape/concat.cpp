// Concat: joins inputs along one axis as block copies (outer x per-input slab).
#include <algorithm>
#include <cstring>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class ConcatKernel final : public Kernel {
 public:
  explicit ConcatKernel(const onnx::Node& node) : node_(node) {
    if (!node.has_attr("axis")) throw_invalid(node.describe(), "attribute 'axis' is missing");
    axis_attr_ = node.attr_int("axis", 0);
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    if (ctx.input_types.empty()) throw_invalid(node_.describe(), "has no inputs");
    const TensorType& first = require_input(ctx, 0);
    const auto rank = static_cast<int64_t>(first.shape.size());
    const int64_t axis = normalize_axis(node_, axis_attr_, rank);
    Shape out = first.shape;
    out[static_cast<std::size_t>(axis)] = 0;
    for (std::size_t i = 0; i < ctx.input_types.size(); ++i) {
      const TensorType& t = require_input(ctx, i);
      if (t.dtype != first.dtype || static_cast<int64_t>(t.shape.size()) != rank) {
        throw_invalid(node_.describe(), "input " + std::to_string(i) + " (" + core::dtype_name(t.dtype) +
                                            core::shape_to_string(t.shape) + ") does not match input 0 (" +
                                            core::dtype_name(first.dtype) + core::shape_to_string(first.shape) + ")");
      }
      for (int64_t d = 0; d < rank; ++d) {
        const auto du = static_cast<std::size_t>(d);
        if (d != axis && t.shape[du] != first.shape[du]) {
          throw_invalid(node_.describe(), "input " + std::to_string(i) + " shape " + core::shape_to_string(t.shape) +
                                              " differs from " + core::shape_to_string(first.shape) + " outside axis " +
                                              std::to_string(axis));
        }
      }
      out[static_cast<std::size_t>(axis)] += t.shape[static_cast<std::size_t>(axis)];
    }
    outer_ = 1;
    for (int64_t d = 0; d < axis; ++d) outer_ *= out[static_cast<std::size_t>(d)];
    return {TensorType{first.dtype, out}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    if (out.numel() == 0) return;
    const std::size_t out_row = out.nbytes() / static_cast<std::size_t>(outer_);
    auto* dst = static_cast<uint8_t*>(out.raw_data());
    std::size_t col = 0;
    for (const Tensor* in : ctx.inputs) {
      const std::size_t in_row = in->nbytes() / static_cast<std::size_t>(outer_);
      const auto* src = static_cast<const uint8_t*>(in->raw_data());
      if (in_row) {
        ctx.pool.parallel_for(outer_, std::max<int64_t>(1, 65536 / static_cast<int64_t>(in_row)), [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) {
            std::memcpy(dst + static_cast<std::size_t>(r) * out_row + col, src + static_cast<std::size_t>(r) * in_row, in_row);
          }
        });
      }
      col += in_row;
    }
  }

 private:
  onnx::Node node_;
  int64_t axis_attr_ = 0;
  int64_t outer_ = 1;
};

}  // namespace

void register_concat_kernel(KernelRegistry& registry) {
  registry.add("", "Concat", 4, [](const onnx::Node& node, int) { return std::make_unique<ConcatKernel>(node); });
}

}  // namespace detrq::runtime::kernels
