// Weight pre-quantization (see prequantize.h).
#include "detrq/engine/cpu/prequantize.h"

#include <cfenv>
#include <set>

#include "detrq/runtime/quantize.h"

namespace detrq::engine::cpu {

namespace {

const core::Tensor* constant(const onnx::Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  return it == g.initializers.end() ? nullptr : &it->second;
}

}  // namespace

PrequantizeSummary prequantize_weights(onnx::Model& model) {
  PrequantizeSummary summary;
  onnx::Graph& g = model.graph;
  const int saved_round = std::fegetround();
  std::fesetround(FE_TONEAREST);
  std::vector<onnx::Node> kept;
  std::set<std::string> maybe_dead;
  for (auto& node : g.nodes) {
    const bool candidate = node.op_type == "QuantizeLinear" && (node.domain.empty() || node.domain == "ai.onnx") &&
                           node.inputs.size() >= 2 && node.outputs.size() == 1 && !node.outputs[0].empty();
    const core::Tensor* x = candidate ? constant(g, node.inputs[0]) : nullptr;
    const core::Tensor* s = candidate ? constant(g, node.inputs[1]) : nullptr;
    const core::Tensor* z = candidate && node.inputs.size() > 2 && !node.inputs[2].empty() ? constant(g, node.inputs[2]) : nullptr;
    const bool zp_missing = candidate && node.inputs.size() > 2 && !node.inputs[2].empty() && z == nullptr;
    bool ok = x && s && !zp_missing && x->dtype() == core::DType::kFloat32 && s->dtype() == core::DType::kFloat32 &&
              s->rank() <= 1 && (!z || ((z->dtype() == core::DType::kInt8 || z->dtype() == core::DType::kUInt8) &&
                                        z->numel() == s->numel())) &&
              !node.has_attr("block_size") && !(node.has_attr("output_dtype") && node.attributes.at("output_dtype").i != 0);
    int64_t axis = node.has_attr("axis") ? node.attributes.at("axis").i : 1;
    if (ok && s->numel() > 1) {
      if (axis < 0) axis += x->rank();
      ok = axis >= 0 && axis < x->rank() && x->dim(static_cast<int>(axis)) == s->numel();
    }
    if (!ok) {
      kept.push_back(std::move(node));
      continue;
    }
    core::Tensor q = runtime::quantize_constant(*x, *s, z, axis);
    summary.folded += 1;
    summary.bytes_after += q.nbytes();
    maybe_dead.insert(node.inputs[0]);
    g.initializers[node.outputs[0]] = std::move(q);
  }
  g.nodes = std::move(kept);
  std::fesetround(saved_round);

  // Drop the float weights that nothing reads any more.
  std::set<std::string> used;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs) used.insert(in);
  for (const auto& o : g.outputs) used.insert(o.name);
  for (const auto& name : maybe_dead) {
    if (used.count(name)) continue;
    auto it = g.initializers.find(name);
    if (it == g.initializers.end()) continue;
    summary.bytes_before += it->second.nbytes();
    g.initializers.erase(it);
  }
  return summary;
}

}  // namespace detrq::engine::cpu
