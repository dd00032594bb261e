// Folding QuantizeLinear of constants (see constant_quantize.h).
#include "runtime/passes/constant_quantize.h"

#include <cfenv>
#include <optional>

#include "detrq/runtime/quantize.h"

namespace detrq::runtime::passes {
namespace {

bool operands_fit(const ConstantQuantize& q) {
  const core::Tensor& s = *q.scale;
  const core::Tensor* z = q.zero_point;
  return q.x->dtype() == core::DType::kFloat32 && s.dtype() == core::DType::kFloat32 && s.rank() <= 1 &&
         (!z || ((z->dtype() == core::DType::kInt8 || z->dtype() == core::DType::kUInt8) && z->numel() == s.numel()));
}

std::optional<ConstantQuantize> match(const onnx::GraphEditor& g, const onnx::Node& node) {
  if (node.op_type != "QuantizeLinear" || !(node.domain.empty() || node.domain == "ai.onnx") ||
      node.inputs.size() < 2 || node.outputs.size() != 1 || node.outputs[0].empty() || node.has_attr("block_size") ||
      (node.has_attr("output_dtype") && node.attributes.at("output_dtype").i != 0)) {
    return std::nullopt;
  }
  ConstantQuantize q;
  q.x = g.initializer(node.inputs[0]);
  q.scale = g.initializer(node.inputs[1]);
  const bool has_zp = node.inputs.size() > 2 && !node.inputs[2].empty();
  q.zero_point = has_zp ? g.initializer(node.inputs[2]) : nullptr;
  if (!q.x || !q.scale || (has_zp && !q.zero_point) || !operands_fit(q)) return std::nullopt;
  q.axis = node.has_attr("axis") ? node.attributes.at("axis").i : 1;
  if (q.scale->numel() > 1) {
    if (q.axis < 0) q.axis += q.x->rank();
    if (q.axis < 0 || q.axis >= q.x->rank() || q.x->dim(static_cast<int>(q.axis)) != q.scale->numel()) {
      return std::nullopt;
    }
  }
  return q;
}

}  // namespace

std::vector<FoldedQuantize> fold_constant_quantize(
    onnx::GraphEditor& g, const std::function<bool(const onnx::Node&, const ConstantQuantize&)>& accept) {
  const int saved_round = std::fegetround();
  std::fesetround(FE_TONEAREST);
  std::vector<FoldedQuantize> folded;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    const onnx::Node& node = g.node(id);
    const std::optional<ConstantQuantize> q = match(g, node);
    if (!q || !accept(node, *q)) continue;
    core::Tensor codes = quantize_constant(*q->x, *q->scale, q->zero_point, q->axis);
    FoldedQuantize done{node.outputs[0], node.inputs[0]};
    g.remove(id);
    g.set_initializer(done.output, std::move(codes));
    folded.push_back(std::move(done));
  }
  std::fesetround(saved_round);
  return folded;
}

}  // namespace detrq::runtime::passes
