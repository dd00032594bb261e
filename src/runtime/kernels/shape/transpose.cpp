// Transpose: permutes dimensions through the strided copy (merged dims, memcpy where the last dim stays).
#include <algorithm>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/shape/strided_copy.h"

namespace detrq::runtime::kernels {
namespace {

class TransposeKernel final : public Kernel {
 public:
  explicit TransposeKernel(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    const Shape& in = ctx.input_types[0].shape;
    const auto rank = static_cast<int64_t>(in.size());
    std::vector<int64_t> perm = node_.attr_ints("perm", {});
    if (perm.empty() && !node_.has_attr("perm")) {
      for (int64_t d = rank; d-- > 0;) perm.push_back(d);
    }
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    bool valid = static_cast<int64_t>(perm.size()) == rank;
    for (int64_t d = 0; valid && d < rank; ++d) valid = sorted[static_cast<std::size_t>(d)] == d;
    if (!valid) {
      throw_invalid(node_.describe(), "perm " + core::shape_to_string(perm) + " is not a permutation of the " +
                                          std::to_string(rank) + " input dimensions");
    }
    const std::vector<int64_t> contiguous = contiguous_strides(in);
    Shape out(in.size());
    strides_.assign(in.size(), 0);
    for (std::size_t d = 0; d < in.size(); ++d) {
      const auto p = static_cast<std::size_t>(perm[d]);
      out[d] = in[p];
      strides_[d] = contiguous[p];
    }
    return {TensorType{ctx.input_types[0].dtype, out}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    strided_copy(core::dtype_size(out.dtype()), out.shape(), strides_, ctx.inputs[0]->raw_data(), out.raw_data(), ctx.pool);
  }

 private:
  onnx::Node node_;
  std::vector<int64_t> strides_;  // input element stride of each output dimension
};

}  // namespace

void register_transpose_kernel(KernelRegistry& registry) {
  registry.add("", "Transpose", 1, [](const onnx::Node& node, int) { return std::make_unique<TransposeKernel>(node); });
}

}  // namespace detrq::runtime::kernels
