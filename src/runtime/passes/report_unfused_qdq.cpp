// Pass "report-unfused-qdq" (changes nothing): after the Q/DQ fusions, every MatMul, Gemm or Conv that
// still reads a DequantizeLinear output runs in float on the dequantized tensors, the reference path:
// correct, but none of INT8's speed. Each gets a note saying why the int8 fusions left it, which `detrq
// inspect --passes` prints, so that a user can see which layers of a Q/DQ file stay in float here.
#include <string>

#include "runtime/passes/pass.h"
#include "runtime/passes/qdq_patterns.h"

namespace detrq::runtime::passes {
namespace {

const onnx::Node* dequantize_of(const onnx::GraphEditor& g, const std::string& tensor) {
  const auto p = g.producer(tensor);
  if (!p) return nullptr;
  const onnx::Node& n = g.node(*p);
  return default_domain(n) && n.op_type == "DequantizeLinear" ? &n : nullptr;
}

// Why a weight's DequantizeLinear does not fit the int8 kernels (weight_ok failed).
std::string weight_reason(const onnx::GraphEditor& g, const onnx::Node& dq) {
  const core::Tensor* w = g.initializer(dq.inputs[0]);
  if (!w) return "its weight codes are computed, not constant";
  if (w->dtype() != core::DType::kInt8) return std::string("its weight codes are ") + core::dtype_name(w->dtype()) + ", not int8";
  if (dq.inputs.size() > 2 && !dq.inputs[2].empty()) {
    const core::Tensor* zp = g.initializer(dq.inputs[2]);
    if (!zp) return "its weight zero point is computed";
    for (int64_t i = 0; zp->dtype() == core::DType::kInt8 && i < zp->numel(); ++i) {
      if (zp->data<int8_t>()[i] != 0) return "its weight zero point is not 0 (the int8 GEMM needs symmetric weights)";
    }
  }
  if (dq.has_attr("block_size") && dq.attr_int("block_size", 0) != 0) return "its weights are quantized in blocks";
  return "its weight scales are neither per tensor nor per output channel";
}

std::string reason(const onnx::GraphEditor& g, const onnx::Node& node, const std::set<std::string>& keep) {
  if (node.op_type == "Gemm") return "Gemm has no int8 kernel (exporters write MatMul + Add)";
  if (node.inputs.size() < 2) return "it has fewer than two inputs";
  for (std::size_t i = 0; i < 2; ++i) {
    if (keep.count(node.inputs[i])) return "input " + std::to_string(i) + " is observed (a kept tensor)";
  }
  const onnx::Node* a = dequantize_of(g, node.inputs[0]);
  const onnx::Node* b = dequantize_of(g, node.inputs[1]);
  if (!a) return "its input 0 is not quantized";
  if (!b) return "its input 1 is not quantized";
  if (!activation_dequantize(g, *a)) return "its activation is not quantized per tensor with constant scale and zero point";
  if (!g.initializer(b->inputs[0])) {
    return "both inputs are computed (an activation x activation product is int8 only inside a fused attention)";
  }
  const bool conv = node.op_type == "Conv";
  if (conv && (node.attr_int("group", 1) != 1 || g.initializer(b->inputs[0])->rank() != 4)) {
    return "only 2-D convolutions with one group run in int8";
  }
  if (!(conv ? conv_weight_dequantize(g, *b) : matmul_weight_dequantize(g, *b))) return weight_reason(g, *b);
  return "its shape or attributes are outside the int8 kernels (e.g. a batched weight)";
}

}  // namespace

PassChanges report_unfused_qdq(PassContext& ctx) {
  const onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    const onnx::Node& node = g.node(id);
    if (!default_domain(node) || (node.op_type != "MatMul" && node.op_type != "Gemm" && node.op_type != "Conv")) {
      continue;
    }
    bool dequantized = false;
    for (std::size_t i = 0; i < node.inputs.size() && i < 2; ++i) dequantized |= dequantize_of(g, node.inputs[i]) != nullptr;
    if (!dequantized) continue;
    changes.notes.push_back(node.op_type + " '" + (node.name.empty() ? node.outputs.at(0) : node.name) +
                            "' stays float on dequantized inputs: " + reason(g, node, ctx.keep));
  }
  return changes;
}

}  // namespace detrq::runtime::passes
