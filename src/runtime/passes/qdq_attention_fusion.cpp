// Pass "fuse-qdq-attention": attention whose probabilities are quantized becomes one com.detrq node that
// quantizes them on the fly. Runs after fuse-qdq-matmul, before fuse-attention (which would not see the
// quantized probabilities). Rewrites MatMul(Q, K) -> Softmax (last axis) -> QuantizeLinear (one scale and
// int8/uint8 zero point, constants) -> DequantizeLinear (the same scale and zero point) -> MatMul(., V), Q,
// K and V computed tensors, into AttentionSoftmax(Q, K, V) with attributes prob_scale, prob_zero_point
// and prob_signed: the kernel rounds each probability to the code grid exactly as the QuantizeLinear ->
// DequantizeLinear pair did, block by block, so that the score and probability tensors never reach memory.
// A Transpose reading the output that keeps the last axis is absorbed (perm_out) as fuse-attention does.
// Where Q, K and V are themselves DequantizeLinear outputs (per tensor; K and V int8 with zero point 0),
// those are absorbed too and the node is QAttentionSoftmax (q, q_scale, q_zp, k, k_scale, k_zp, v,
// v_scale, v_zp): both products in int8 arithmetic, the probabilities quantized to codes, read through the
// Transposes of the codes in front of the DequantizeLinear nodes (perm_q, perm_k, perm_v).
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "runtime/internal_domain.h"
#include "runtime/passes/match_util.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {
namespace {

using onnx::GraphEditor;
using onnx::NodeId;

bool same_value(const GraphEditor& g, const std::string& a, const std::string& b) {
  if (a == b) return true;
  const core::Tensor* x = g.constant(a);
  const core::Tensor* y = g.constant(b);
  return x && y && x->dtype() == y->dtype() && x->numel() == 1 && y->numel() == 1 &&
         std::memcmp(x->raw_data(), y->raw_data(), core::dtype_size(x->dtype())) == 0;
}

// The DequantizeLinear that alone reads QuantizeLinear `q`'s codes, with q's scale and zero point.
std::optional<NodeId> matching_dequantize(const GraphEditor& g, const std::set<std::string>& keep,
                                          const onnx::Node& q) {
  const auto dq = only_reader(g, q.outputs[0], "DequantizeLinear", keep);
  if (!dq) return std::nullopt;
  const onnx::Node& d = g.node(*dq);
  if (d.inputs.size() != 3 || d.outputs.size() != 1 || d.has_attr("block_size") ||
      !same_value(g, d.inputs[1], q.inputs[1]) || !same_value(g, d.inputs[2], q.inputs[2])) {
    return std::nullopt;
  }
  return dq;
}

onnx::Attribute attribute(float f) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kFloat;
  a.f = f;
  return a;
}
onnx::Attribute attribute(int64_t i) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInt;
  a.i = i;
  return a;
}

// The probabilities' code grid from the QuantizeLinear's constants.
void set_probability_grid(const GraphEditor& g, const onnx::Node& q, onnx::Node& fused) {
  const core::Tensor* zp = g.constant(q.inputs[2]);
  const bool is_signed = zp->dtype() == core::DType::kInt8;
  const int64_t zero = is_signed ? zp->data<int8_t>()[0] : zp->data<uint8_t>()[0];
  fused.attributes["prob_scale"] = attribute(*scalar_constant(g, q.inputs[1]));
  fused.attributes["prob_zero_point"] = attribute(zero);
  fused.attributes["prob_signed"] = attribute(static_cast<int64_t>(is_signed));
}

// The DequantizeLinear (per tensor: one scale, one zero point, constants) that alone produces operand
// `name` for the attention; with `weight`, its codes must be int8 with zero point 0 (the int8 GEMM's weight).
std::optional<NodeId> operand_dequantize(const GraphEditor& g, const std::set<std::string>& keep,
                                         const std::string& name, bool weight) {
  const auto p = g.producer(name);
  if (!p || !g.internal(name, 1, keep)) return std::nullopt;
  const onnx::Node& d = g.node(*p);
  if ((!d.domain.empty() && d.domain != "ai.onnx") || d.op_type != "DequantizeLinear" || d.inputs.size() != 3 ||
      d.has_attr("block_size") || g.constant(d.inputs[0]) || !scalar_constant(g, d.inputs[1])) {
    return std::nullopt;
  }
  const core::Tensor* zp = g.constant(d.inputs[2]);
  if (!zp || zp->numel() != 1 || (zp->dtype() != core::DType::kInt8 && zp->dtype() != core::DType::kUInt8)) {
    return std::nullopt;
  }
  if (weight && (zp->dtype() != core::DType::kInt8 || zp->data<int8_t>()[0] != 0)) return std::nullopt;
  return p;
}

// The Transpose that alone produces operand codes `codes`, when the kernel can read through it (for Q,
// `rows_contiguous`: one that keeps the last axis last).
std::optional<NodeId> codes_transpose(const GraphEditor& g, const std::set<std::string>& keep,
                                      const std::string& codes, bool rows_contiguous) {
  const auto p = g.producer(codes);
  if (!p || !g.internal(codes, 1, keep)) return std::nullopt;
  const onnx::Node& t = g.node(*p);
  if (!t.domain.empty() || t.op_type != "Transpose" || t.inputs.size() != 1 || t.outputs.size() != 1 ||
      !t.has_attr("perm")) {
    return std::nullopt;
  }
  const std::vector<int64_t> perm = t.attr_ints("perm");
  if (perm.size() < 2 || (rows_contiguous && perm.back() != static_cast<int64_t>(perm.size()) - 1)) return std::nullopt;
  return p;
}

// Where Q, K and V all come from such DequantizeLinear nodes (and the probabilities are quantized), the
// whole attention runs in int8: QAttentionSoftmax on the codes; the DequantizeLinear nodes are absorbed,
// and so are Transposes of the codes in front of them (perm_q, perm_k, perm_v: the kernel reads through
// them, as the heads split of ViT attention writes them once hoist-quantize-over-layout has moved its
// QuantizeLinear up).
bool make_integer(const GraphEditor& g, const std::set<std::string>& keep, onnx::Node& fused,
                  std::vector<NodeId>& absorbed) {
  std::vector<std::string> inputs;
  std::vector<NodeId> dqs;
  std::map<std::string, onnx::Attribute> perms;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto dq = operand_dequantize(g, keep, fused.inputs[i], i > 0);
    if (!dq) return false;
    const onnx::Node& d = g.node(*dq);
    std::vector<std::string> operand = d.inputs;
    if (const auto t = codes_transpose(g, keep, d.inputs[0], i == 0)) {
      operand[0] = g.node(*t).inputs[0];
      perms[std::string("perm_") + "qkv"[i]] = ints_attribute(g.node(*t).attr_ints("perm"));
      dqs.push_back(*t);
    }
    inputs.insert(inputs.end(), operand.begin(), operand.end());
    dqs.push_back(*dq);
  }
  fused.op_type = "QAttentionSoftmax";
  fused.inputs = std::move(inputs);
  for (auto& [name, attr] : perms) fused.attributes[name] = attr;
  absorbed.insert(absorbed.end(), dqs.begin(), dqs.end());
  return true;
}

// The attention starting at MatMul `id`, as one node to put in the place of its product with V (`*at`),
// and the other nodes it absorbs.
std::optional<onnx::Node> match_attention(const GraphEditor& g, const std::set<std::string>& keep, int64_t opset,
                                          NodeId id, NodeId* at, std::vector<NodeId>& absorbed) {
  const onnx::Node& qk = g.node(id);
  if (!qk.domain.empty() || qk.op_type != "MatMul" || qk.inputs.size() != 2 || qk.outputs.size() != 1) return {};
  if (g.constant(qk.inputs[0]) || g.constant(qk.inputs[1])) return {};
  const auto softmax = only_reader(g, qk.outputs[0], "Softmax", keep);
  if (!softmax) return {};
  const onnx::Node& sm = g.node(*softmax);
  if (sm.attr_int("axis", opset >= 13 ? -1 : 1) != -1 || sm.outputs.size() != 1) return {};
  const auto q = only_reader(g, sm.outputs[0], "QuantizeLinear", keep);
  if (!q || !per_tensor_quantize(g, g.node(*q))) return {};
  const auto dq = matching_dequantize(g, keep, g.node(*q));
  if (!dq) return {};
  const std::string& probs = g.node(*dq).outputs[0];
  const auto pv = only_reader(g, probs, "MatMul", keep);
  if (!pv) return {};
  const onnx::Node& pv_node = g.node(*pv);
  if (pv_node.inputs.size() != 2 || pv_node.inputs[0] != probs || pv_node.inputs[1] == probs ||
      g.constant(pv_node.inputs[1])) {
    return {};
  }
  onnx::Node fused;
  fused.name = qk.name;
  fused.op_type = "AttentionSoftmax";
  fused.domain = kInternalDomain;
  fused.inputs = {qk.inputs[0], qk.inputs[1], pv_node.inputs[1]};
  fused.outputs = pv_node.outputs;
  set_probability_grid(g, g.node(*q), fused);
  absorbed = {id, *softmax, *q, *dq};
  make_integer(g, keep, fused, absorbed);
  if (const auto t = only_reader(g, fused.outputs.at(0), "Transpose", keep)) {
    const onnx::Node& node = g.node(*t);
    const std::vector<int64_t> perm = node.has_attr("perm") ? node.attr_ints("perm") : std::vector<int64_t>{};
    if (perm.size() >= 2 && perm.back() == static_cast<int64_t>(perm.size()) - 1 && node.outputs.size() == 1) {
      fused.attributes["perm_out"] = ints_attribute(perm);
      fused.outputs = node.outputs;
      absorbed.push_back(*t);
    }
  }
  *at = *pv;  // V's product: V is computed by then
  return fused;
}

}  // namespace

PassChanges fuse_qdq_attention(PassContext& ctx) {
  GraphEditor& g = ctx.graph;
  const int64_t opset = ctx.model.opset("");
  PassChanges changes;
  for (NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    NodeId at = 0;
    std::vector<NodeId> absorbed;
    std::optional<onnx::Node> fused = match_attention(g, ctx.keep, opset, id, &at, absorbed);
    if (!fused) continue;
    for (NodeId k : absorbed) g.remove(k);
    g.replace(at, std::move(*fused));
    ++changes.rewritten;
    changes.fused += absorbed.size();
  }
  if (changes.rewritten > 0) import_internal_domain(ctx.model);
  return changes;
}

}  // namespace detrq::runtime::passes
