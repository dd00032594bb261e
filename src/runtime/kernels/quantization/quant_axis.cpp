// QuantAxis: checks a Q/DQ node's scale and zero point against its input and finds the axis layout.
#include <string>

#include "detrq/core/error.h"
#include "runtime/kernels/quantization/quantization.h"

namespace detrq::runtime::kernels {

std::string node_label(const onnx::Node& node) { return node.op_type + " '" + node.name + "'"; }

QuantAxis quant_axis(const onnx::Node& node, const TensorType& x, const TensorType& scale,
                     const TensorType* zero_point) {
  if (scale.dtype != DType::kFloat32) {
    throw_unsupported(node_label(node), std::string("scale of dtype ") + core::dtype_name(scale.dtype),
                      "detrq runs float32 scales");
  }
  if (zero_point && zero_point->shape != scale.shape) {
    throw_invalid(node_label(node), "zero point shape " + core::shape_to_string(zero_point->shape) +
                                       " differs from scale shape " + core::shape_to_string(scale.shape));
  }
  if (auto it = node.attributes.find("block_size"); it != node.attributes.end() && it->second.i != 0) {
    throw_unsupported(node_label(node), "blocked quantization (block_size)", "use per-tensor or per-axis scales");
  }
  QuantAxis q;
  const int64_t n = core::shape_numel(scale.shape);
  if (scale.shape.size() > 1) {
    throw_invalid(node_label(node), "scale must be a scalar or 1-D, got " + core::shape_to_string(scale.shape));
  }
  if (n == 1) return q;  // per tensor
  int64_t axis = 1;
  if (auto it = node.attributes.find("axis"); it != node.attributes.end()) axis = it->second.i;
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) {
    throw_invalid(node_label(node), "axis is outside the input's rank " + std::to_string(rank));
  }
  if (x.shape[static_cast<std::size_t>(axis)] != n) {
    throw_invalid(node_label(node), "scale has " + std::to_string(n) + " values but input dimension " +
                                       std::to_string(axis) + " is " + std::to_string(x.shape[static_cast<std::size_t>(axis)]));
  }
  q.per_axis = true;
  q.channels = n;
  for (int64_t d = 0; d < axis; ++d) q.outer *= x.shape[static_cast<std::size_t>(d)];
  for (int64_t d = axis + 1; d < rank; ++d) q.inner *= x.shape[static_cast<std::size_t>(d)];
  return q;
}

}  // namespace detrq::runtime::kernels
