// The pattern matchers the fusion passes share (match_util.h).
#include "runtime/passes/match_util.h"

#include <cmath>
#include <vector>

namespace detrq::runtime::passes {

namespace {

bool near(std::optional<float> v, double want) { return v && std::abs(*v - want) <= 1e-5 * std::abs(want); }

}  // namespace

std::optional<std::vector<onnx::NodeId>> match_erf_gelu(const onnx::GraphEditor& g, const std::string& x,
                                                        const std::set<std::string>& keep) {
  if (!g.internal(x, 2, keep)) return std::nullopt;
  std::optional<onnx::NodeId> div, mul;
  for (onnx::NodeId n : g.consumers(x)) {
    const onnx::Node& node = g.node(n);
    if (!node.domain.empty()) return std::nullopt;
    if (node.op_type == "Div" && node.inputs.size() == 2 && node.inputs[0] == x) div = n;
    if (node.op_type == "Mul") mul = n;
  }
  if (!div || !mul || !near(scalar_constant(g, g.node(*div).inputs[1]), std::sqrt(2.0))) return std::nullopt;
  const auto erf = only_reader(g, g.node(*div).outputs.at(0), "Erf", keep);
  if (!erf) return std::nullopt;
  const std::string& e = g.node(*erf).outputs.at(0);
  const auto add = only_reader(g, e, "Add", keep);
  if (!add || !near(scalar_constant(g, other_input(g.node(*add), e).value_or("")), 1.0)) return std::nullopt;
  const std::string& sum = g.node(*add).outputs.at(0);
  const auto mul_x = only_reader(g, sum, "Mul", keep);
  if (mul_x != mul || other_input(g.node(*mul), sum) != x) return std::nullopt;
  const std::string& m = g.node(*mul).outputs.at(0);
  const auto half = only_reader(g, m, "Mul", keep);
  if (!half || !near(scalar_constant(g, other_input(g.node(*half), m).value_or("")), 0.5)) return std::nullopt;
  return std::vector<onnx::NodeId>{*div, *erf, *add, *mul, *half};
}

bool float_vector_constant(const onnx::GraphEditor& g, const std::string& tensor, int64_t n) {
  const core::Tensor* t = g.constant(tensor);
  return t && t->dtype() == core::DType::kFloat32 && t->shape() == core::Shape{n};
}

bool per_tensor_quantize(const onnx::GraphEditor& g, const onnx::Node& node) {
  if ((!node.domain.empty() && node.domain != "ai.onnx") || node.op_type != "QuantizeLinear" ||
      node.inputs.size() != 3 || node.outputs.size() != 1 || node.has_attr("block_size") ||
      node.has_attr("output_dtype")) {
    return false;
  }
  const core::Tensor* zp = g.constant(node.inputs[2]);
  return scalar_constant(g, node.inputs[1]).has_value() && zp && zp->numel() == 1 &&
         (zp->dtype() == core::DType::kInt8 || zp->dtype() == core::DType::kUInt8);
}

}  // namespace detrq::runtime::passes
