// Pass "fuse-qdq-conv": a 2-D Conv (group 1, no auto_pad, constant or no bias) on
// DequantizeLinear(q_x) and DequantizeLinear(W int8 [O, C, kh, kw], scale per tensor or axis 0) becomes
// com.detrq QConvF(q_x, x_scale, x_zero_point, W, w_scale[, bias]), which runs in int8 arithmetic. The
// DequantizeLinear nodes stay for their other readers; remove-dead-nodes drops the rest.
#include "runtime/internal_domain.h"
#include "runtime/passes/pass.h"
#include "runtime/passes/qdq_patterns.h"

namespace detrq::runtime::passes {
namespace {

// Conv attributes QConvF runs: one group, explicit (or no) pads, a kernel shape matching the weight.
bool plain_conv(const onnx::GraphEditor& g, const onnx::Node& conv, const core::Tensor& w) {
  if (conv.attr_int("group", 1) != 1) return false;
  const std::string auto_pad = conv.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET") return false;
  const auto kernel = conv.attr_ints("kernel_shape", {w.dim(2), w.dim(3)});
  if (kernel != std::vector<int64_t>{w.dim(2), w.dim(3)}) return false;
  if (conv.attr_ints("strides", {1, 1}).size() != 2 || conv.attr_ints("dilations", {1, 1}).size() != 2 ||
      conv.attr_ints("pads", {0, 0, 0, 0}).size() != 4) {
    return false;
  }
  if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
    const core::Tensor* bias = g.initializer(conv.inputs[2]);
    if (!bias || bias->dtype() != core::DType::kFloat32 || bias->numel() != w.dim(0)) return false;
  }
  return true;
}

bool conv_candidate(const onnx::Node& node) {
  return default_domain(node) && node.op_type == "Conv" && node.inputs.size() >= 2 && node.inputs.size() <= 3 &&
         node.outputs.size() == 1;
}

}  // namespace

PassChanges fuse_qdq_conv(PassContext& ctx) {
  onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id) || !conv_candidate(g.node(id))) continue;
    const onnx::Node& node = g.node(id);
    const DequantizedOperands operands = dequantized_operands(g, node, ctx.keep, &conv_weight_dequantize);
    if (!operands.activation || !plain_conv(g, node, *g.initializer(operands.weight->inputs[0]))) continue;
    onnx::Node fused;
    fused.name = node.name;
    fused.op_type = "QConvF";
    fused.domain = kInternalDomain;
    fused.inputs = quantized_inputs(operands);
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) fused.inputs.push_back(node.inputs[2]);
    for (const char* key : {"strides", "pads", "dilations"}) {
      if (auto it = node.attributes.find(key); it != node.attributes.end()) fused.attributes[key] = it->second;
    }
    fused.outputs = node.outputs;
    g.replace(id, std::move(fused));
    ++changes.rewritten;
  }
  if (changes.rewritten > 0) import_internal_domain(ctx.model);
  return changes;
}

}  // namespace detrq::runtime::passes
