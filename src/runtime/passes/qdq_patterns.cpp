// Matching of DequantizeLinear operands for the Q/DQ fusions (see qdq_patterns.h).
#include "runtime/passes/qdq_patterns.h"

namespace detrq::runtime::passes {
namespace {

// A DequantizeLinear node (default domain, no blocks) with scale and optional zero point initializers.
bool plain_dequantize(const onnx::GraphEditor& g, const onnx::Node& n) {
  if (!default_domain(n) || n.op_type != "DequantizeLinear" || n.inputs.size() < 2 || n.outputs.size() != 1) {
    return false;
  }
  if (auto it = n.attributes.find("block_size"); it != n.attributes.end() && it->second.i != 0) return false;
  const core::Tensor* scale = g.initializer(n.inputs[1]);
  if (!scale || scale->dtype() != core::DType::kFloat32 || scale->rank() > 1 || scale->numel() < 1) return false;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const core::Tensor* zp = g.initializer(n.inputs[2]);
    if (!zp || zp->numel() != scale->numel() || zp->shape() != scale->shape()) return false;
    if (zp->dtype() != core::DType::kInt8 && zp->dtype() != core::DType::kUInt8) return false;
  }
  return true;
}

// A DequantizeLinear whose zero point is absent or int8 zeros (what the int8 GEMM's weights assume).
bool zero_weight_zero_point(const onnx::GraphEditor& g, const onnx::Node& n) {
  if (n.inputs.size() <= 2 || n.inputs[2].empty()) return true;
  const core::Tensor* zp = g.initializer(n.inputs[2]);
  if (zp->dtype() != core::DType::kInt8) return false;
  for (int64_t i = 0; i < zp->numel(); ++i) {
    if (zp->data<int8_t>()[i] != 0) return false;
  }
  return true;
}

}  // namespace

bool default_domain(const onnx::Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

bool activation_dequantize(const onnx::GraphEditor& g, const onnx::Node& n) {
  return plain_dequantize(g, n) && !g.initializer(n.inputs[0]) && g.initializer(n.inputs[1])->numel() == 1;
}

bool matmul_weight_dequantize(const onnx::GraphEditor& g, const onnx::Node& n) {
  if (!plain_dequantize(g, n)) return false;
  const core::Tensor* w = g.initializer(n.inputs[0]);
  if (!w || w->dtype() != core::DType::kInt8 || w->rank() != 2) return false;
  const core::Tensor* scale = g.initializer(n.inputs[1]);
  if (scale->numel() > 1) {
    const int64_t axis = n.attr_int("axis", 1);
    if ((axis != 1 && axis != -1) || scale->numel() != w->dim(1)) return false;
  }
  return zero_weight_zero_point(g, n);
}

bool conv_weight_dequantize(const onnx::GraphEditor& g, const onnx::Node& n) {
  if (!plain_dequantize(g, n)) return false;
  const core::Tensor* w = g.initializer(n.inputs[0]);
  if (!w || w->dtype() != core::DType::kInt8 || w->rank() != 4) return false;
  const core::Tensor* scale = g.initializer(n.inputs[1]);
  if (scale->numel() > 1 && (n.attr_int("axis", 1) != 0 || scale->numel() != w->dim(0))) return false;
  return zero_weight_zero_point(g, n);
}

DequantizedOperands dequantized_operands(const onnx::GraphEditor& g, const onnx::Node& node,
                                         const std::set<std::string>& keep,
                                         bool (*weight_ok)(const onnx::GraphEditor&, const onnx::Node&)) {
  const auto a = g.producer(node.inputs[0]);
  const auto b = g.producer(node.inputs[1]);
  if (!a || !b || keep.count(node.inputs[0]) || keep.count(node.inputs[1])) return {};
  const onnx::Node& activation = g.node(*a);
  const onnx::Node& weight = g.node(*b);
  if (!activation_dequantize(g, activation) || !weight_ok(g, weight)) return {};
  return {&activation, &weight};
}

std::vector<std::string> quantized_inputs(const DequantizedOperands& operands) {
  const onnx::Node& a = *operands.activation;
  const onnx::Node& b = *operands.weight;
  return {a.inputs[0], a.inputs[1], a.inputs.size() > 2 ? a.inputs[2] : std::string(), b.inputs[0], b.inputs[1]};
}

}  // namespace detrq::runtime::passes
