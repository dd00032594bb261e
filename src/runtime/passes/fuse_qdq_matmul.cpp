// Pass "fuse-qdq-matmul": DequantizeLinear(q_x, x_scale[, x_zero_point]) -> MatMul <-
// DequantizeLinear(W int8 [K, N], w_scale per tensor or per column, zero point 0), all of them
// initializers, becomes com.detrq QMatMulF(q_x, x_scale, x_zero_point, W, w_scale) under the MatMul's
// name and output, which runs in int8 arithmetic. The DequantizeLinear nodes stay for their other
// readers; remove-dead-nodes drops the rest.
#include "runtime/internal_domain.h"
#include "runtime/passes/pass.h"
#include "runtime/passes/qdq_patterns.h"

namespace detrq::runtime::passes {

PassChanges fuse_qdq_matmul(PassContext& ctx) {
  onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    const onnx::Node& node = g.node(id);
    if (!default_domain(node) || node.op_type != "MatMul" || node.inputs.size() != 2 || node.outputs.size() != 1) {
      continue;
    }
    const DequantizedOperands operands = dequantized_operands(g, node, ctx.keep, &matmul_weight_dequantize);
    if (!operands.activation) continue;
    onnx::Node fused;
    fused.name = node.name;
    fused.op_type = "QMatMulF";
    fused.domain = kInternalDomain;
    fused.inputs = quantized_inputs(operands);
    fused.outputs = node.outputs;
    g.replace(id, std::move(fused));
    ++changes.rewritten;
  }
  if (changes.rewritten > 0) import_internal_domain(ctx.model);
  return changes;
}

}  // namespace detrq::runtime::passes
