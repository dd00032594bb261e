// Pass "fuse-layernorm-quantize": a float32 LayerNormalization (one output) whose output only a per-tensor
// QuantizeLinear reads becomes com.detrq QLayerNormalization(X, Scale, B or "", y_scale, y_zero_point),
// writing the codes: the normalized rows are quantized while they are in cache, with QuantizeLinear's own
// arithmetic, so the result is the two nodes' bit for bit and the float tensor never reaches memory (the
// transformer blocks' LayerNorms feed the next QMatMulF's codes). Kept tensors and graph outputs stay.
#include "runtime/internal_domain.h"
#include "runtime/passes/match_util.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {

PassChanges fuse_layernorm_quantize(PassContext& ctx) {
  onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    const onnx::Node& ln = g.node(id);
    if (!ln.domain.empty() || ln.op_type != "LayerNormalization" || ln.outputs.size() != 1 || ln.inputs.size() < 2) {
      continue;
    }
    const auto q = only_reader(g, ln.outputs[0], "QuantizeLinear", ctx.keep);
    if (!q || !per_tensor_quantize(g, g.node(*q))) continue;
    onnx::Node fused = ln;
    fused.domain = kInternalDomain;
    fused.op_type = "QLayerNormalization";
    fused.inputs.resize(3);  // B may be absent: ""
    fused.inputs.push_back(g.node(*q).inputs[1]);
    fused.inputs.push_back(g.node(*q).inputs[2]);
    fused.outputs = g.node(*q).outputs;
    g.remove(*q);
    g.replace(id, std::move(fused));
    ++changes.rewritten;
    ++changes.fused;
  }
  if (changes.rewritten > 0) import_internal_domain(ctx.model);
  return changes;
}

}  // namespace detrq::runtime::passes
