// Q/DQ attention fusion (see qdq_attention_fusion.h).
#include "runtime/passes/qdq_attention_fusion.h"
#include "runtime/passes/pass.h"

#include <cstring>
#include <optional>
#include <vector>

#include "runtime/internal_domain.h"
#include "runtime/passes/qdq_graph_index.h"

namespace detrq::runtime {
namespace {

bool same_value(const QdqGraphIndex& g, const std::string& a, const std::string& b) {
  if (a == b) return true;
  const core::Tensor* x = g.initializer(a);
  const core::Tensor* y = g.initializer(b);
  return x && y && x->dtype() == y->dtype() && x->numel() == 1 && y->numel() == 1 &&
         std::memcmp(x->raw_data(), y->raw_data(), core::dtype_size(x->dtype())) == 0;
}

// The DequantizeLinear that alone reads QuantizeLinear `q`'s codes, with q's scale and zero point.
std::optional<std::size_t> matching_dequantize(const QdqGraphIndex& g, const onnx::Graph& graph,
                                               const onnx::Node& q) {
  const auto dq = g.only_reader(q.outputs[0], "DequantizeLinear");
  if (!dq) return std::nullopt;
  const onnx::Node& d = graph.nodes[*dq];
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

// The probabilities' code grid from the QuantizeLinear's initializers.
void set_probability_grid(const QdqGraphIndex& g, const onnx::Node& q, onnx::Node& fused) {
  const core::Tensor* zp = g.initializer(q.inputs[2]);
  const bool is_signed = zp->dtype() == core::DType::kInt8;
  const int64_t zero = is_signed ? zp->data<int8_t>()[0] : zp->data<uint8_t>()[0];
  fused.attributes["prob_scale"] = attribute(*g.scalar(q.inputs[1]));
  fused.attributes["prob_zero_point"] = attribute(zero);
  fused.attributes["prob_signed"] = attribute(static_cast<int64_t>(is_signed));
}

// The DequantizeLinear (per tensor: one scale, one zero point, initializers) that alone produces operand
// `name` for the attention; with `weight`, its codes must be int8 with zero point 0 (the int8 GEMM's weight).
std::optional<std::size_t> operand_dequantize(const QdqGraphIndex& g, const onnx::Graph& graph,
                                              const std::string& name, bool weight) {
  const auto p = g.producer(name);
  if (!p || !g.internal(name, 1)) return std::nullopt;
  const onnx::Node& d = graph.nodes[*p];
  if ((!d.domain.empty() && d.domain != "ai.onnx") || d.op_type != "DequantizeLinear" || d.inputs.size() != 3 ||
      d.has_attr("block_size") || g.initializer(d.inputs[0]) || !g.scalar(d.inputs[1])) {
    return std::nullopt;
  }
  const core::Tensor* zp = g.initializer(d.inputs[2]);
  if (!zp || zp->numel() != 1 || (zp->dtype() != core::DType::kInt8 && zp->dtype() != core::DType::kUInt8)) {
    return std::nullopt;
  }
  if (weight && (zp->dtype() != core::DType::kInt8 || zp->data<int8_t>()[0] != 0)) return std::nullopt;
  return p;
}

// Where Q, K and V all come from such DequantizeLinear nodes (and the probabilities are quantized), the
// whole attention runs in int8: QAttentionSoftmax on the codes; the DequantizeLinear nodes are absorbed.
bool make_integer(const QdqGraphIndex& g, const onnx::Graph& graph, onnx::Node& fused,
                  std::vector<std::size_t>& absorbed) {
  std::vector<std::string> inputs;
  std::vector<std::size_t> dqs;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto dq = operand_dequantize(g, graph, fused.inputs[i], i > 0);
    if (!dq) return false;
    const onnx::Node& d = graph.nodes[*dq];
    inputs.insert(inputs.end(), d.inputs.begin(), d.inputs.end());
    dqs.push_back(*dq);
  }
  fused.op_type = "QAttentionSoftmax";
  fused.inputs = std::move(inputs);
  absorbed.insert(absorbed.end(), dqs.begin(), dqs.end());
  return true;
}

}  // namespace

std::size_t fuse_qdq_attention(onnx::Graph& graph, const std::set<std::string>& keep, int64_t softmax_opset) {
  const QdqGraphIndex g(graph, keep);
  std::vector<bool> removed(graph.nodes.size(), false);
  std::vector<std::pair<std::size_t, onnx::Node>> replacements;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    const onnx::Node& qk = graph.nodes[i];
    if (!qk.domain.empty() || qk.op_type != "MatMul" || qk.inputs.size() != 2 || qk.outputs.size() != 1) continue;
    if (g.initializer(qk.inputs[0]) || g.initializer(qk.inputs[1])) continue;
    const auto softmax = g.only_reader(qk.outputs[0], "Softmax");
    if (!softmax || removed[*softmax]) continue;
    const onnx::Node& sm = graph.nodes[*softmax];
    if (sm.attr_int("axis", softmax_opset >= 13 ? -1 : 1) != -1 || sm.outputs.size() != 1) continue;
    const auto q = g.only_reader(sm.outputs[0], "QuantizeLinear");
    if (!q || !g.per_tensor_quantize(graph.nodes[*q])) continue;
    const auto dq = matching_dequantize(g, graph, graph.nodes[*q]);
    if (!dq) continue;
    const std::string& probs = graph.nodes[*dq].outputs[0];
    const auto pv = g.only_reader(probs, "MatMul");
    if (!pv || removed[*pv] || graph.nodes[*pv].inputs.size() != 2 || graph.nodes[*pv].inputs[0] != probs ||
        graph.nodes[*pv].inputs[1] == probs || g.initializer(graph.nodes[*pv].inputs[1])) {
      continue;
    }
    onnx::Node fused;
    fused.name = qk.name;
    fused.op_type = "AttentionSoftmax";
    fused.domain = kInternalDomain;
    fused.inputs = {qk.inputs[0], qk.inputs[1], graph.nodes[*pv].inputs[1]};
    fused.outputs = graph.nodes[*pv].outputs;
    set_probability_grid(g, graph.nodes[*q], fused);
    std::vector<std::size_t> absorbed{i, *softmax, *q, *dq};
    make_integer(g, graph, fused, absorbed);
    if (const auto t = g.only_reader(fused.outputs.at(0), "Transpose"); t && !removed[*t]) {
      const onnx::Node& node = graph.nodes[*t];
      const std::vector<int64_t> perm = node.has_attr("perm") ? node.attr_ints("perm") : std::vector<int64_t>{};
      if (perm.size() >= 2 && perm.back() == static_cast<int64_t>(perm.size()) - 1 && node.outputs.size() == 1) {
        onnx::Attribute attr;
        attr.kind = onnx::Attribute::Kind::kInts;
        attr.ints = perm;
        fused.attributes["perm_out"] = attr;
        fused.outputs = node.outputs;
        absorbed.push_back(*t);
      }
    }
    for (std::size_t k : absorbed) removed[k] = true;
    replacements.emplace_back(*pv, std::move(fused));  // at V's product: V is computed by then
  }
  const std::size_t count = replacements.size();
  if (count > 0) replace_and_remove(graph, std::move(removed), std::move(replacements));
  return count;
}

}  // namespace detrq::runtime

namespace detrq::runtime::passes {

// Pass "fuse-qdq-attention": written over onnx::Graph with its own index (qdq_graph_index.h).
PassChanges fuse_qdq_attention(PassContext& ctx) {
  return run_graph_fusion(ctx, [&](onnx::Graph& graph) { return runtime::fuse_qdq_attention(graph, ctx.keep, ctx.model.opset("")); });
}

}  // namespace detrq::runtime::passes
