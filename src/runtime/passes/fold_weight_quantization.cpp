// Pass "fold-weight-quantization": weights given as QuantizeLinear(float initializer) ->
// DequantizeLinear get their int8 codes computed now (fold_constant_quantize), stored as an initializer
// under the QuantizeLinear's output name, so that the Q/DQ fusions see constant int8 weights. The CPU
// engine pre-quantizes the same way at build time, so an engine and its ONNX run alike.
#include "runtime/passes/constant_quantize.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {

PassChanges fold_weight_quantization(PassContext& ctx) {
  const onnx::GraphEditor& g = ctx.graph;
  // Only codes that DequantizeLinear nodes alone read, with an explicit int8 zero point: the int8
  // weights the fusions take (other constant QuantizeLinears fold later, with the other constants).
  auto accept = [&](const onnx::Node& node, const ConstantQuantize& q) {
    const std::string& out = node.outputs[0];
    if (node.inputs.size() != 3 || !q.zero_point || q.zero_point->dtype() != core::DType::kInt8 ||
        node.has_attr("output_dtype") || q.x->rank() < 1 || g.is_graph_output(out) || ctx.keep.count(out)) {
      return false;
    }
    for (onnx::NodeId reader : g.consumers(out)) {
      if (g.node(reader).op_type != "DequantizeLinear") return false;
    }
    return true;
  };
  PassChanges changes;
  changes.removed = fold_constant_quantize(ctx.graph, accept).size();
  return changes;
}

}  // namespace detrq::runtime::passes
