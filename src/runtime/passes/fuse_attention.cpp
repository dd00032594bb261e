// Pass "fuse-attention": MatMul(Q, K) -> Softmax over the last axis -> MatMul(., V), the attention of
// transformer exports, becomes one com.detrq AttentionSoftmax (inputs Q, K, V): its kernel computes the
// scores of a block of rows, their softmax and their product with V while the block is in cache, so the
// score tensor (heads x tokens x tokens) never goes to memory. A Mul of Q or K by a scalar constant is
// absorbed into its `scale`, Transposes of Q, K, V into perm_q/k/v, and a head-merging Transpose of the
// output into perm_out. Kept tensors and graph outputs are never fused away.
#include <vector>

#include "runtime/internal_domain.h"
#include "runtime/passes/match_util.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {
namespace {

struct Attention {
  onnx::Node fused;
  std::vector<onnx::NodeId> absorbed;  // Softmax and the PV MatMul first
  onnx::NodeId pv = 0;
};

// MatMul(Q, K) of two activations (a constant K is a linear layer), Softmax over the last axis, MatMul
// of the probabilities by V.
std::optional<Attention> match_core(const onnx::GraphEditor& g, onnx::NodeId id, const PassContext& ctx) {
  const onnx::Node& qk = g.node(id);
  if (!qk.domain.empty() || qk.op_type != "MatMul" || qk.inputs.size() != 2 || qk.outputs.size() != 1) return {};
  if (g.constant(qk.inputs[0]) || g.constant(qk.inputs[1])) return {};
  const auto softmax = only_reader(g, qk.outputs[0], "Softmax", ctx.keep);
  if (!softmax) return {};
  const onnx::Node& sm = g.node(*softmax);
  // Over the last axis: -1 explicitly, or by default from opset 13 (before, the default was 1).
  if (sm.attr_int("axis", ctx.model.opset("") >= 13 ? -1 : 1) != -1 || sm.outputs.size() != 1) return {};
  const auto pv = only_reader(g, sm.outputs[0], "MatMul", ctx.keep);
  if (!pv) return {};
  const onnx::Node& pv_node = g.node(*pv);
  if (pv_node.inputs.size() != 2 || pv_node.inputs[0] != sm.outputs[0] || pv_node.inputs[1] == sm.outputs[0]) return {};
  Attention a;
  a.fused.name = qk.name;
  a.fused.op_type = "AttentionSoftmax";
  a.fused.domain = kInternalDomain;
  a.fused.inputs = {qk.inputs[0], qk.inputs[1], pv_node.inputs[1]};
  a.fused.outputs = pv_node.outputs;
  a.absorbed = {*softmax, *pv};
  a.pv = *pv;
  return a;
}

// Exports scale Q and K (each by the root of 1/sqrt(d)) with a Mul by a constant: absorbed, the product
// is scaled once by the GEMM instead of two passes over Q and K.
void absorb_scales(const onnx::GraphEditor& g, Attention& a, const std::set<std::string>& keep) {
  float scale = 1.0F;
  for (std::size_t operand = 0; operand < 2; ++operand) {
    const auto mul = g.producer(a.fused.inputs[operand]);
    if (!mul || !g.internal(a.fused.inputs[operand], 1, keep)) continue;
    const onnx::Node& node = g.node(*mul);
    if (!node.domain.empty() || node.op_type != "Mul" || node.inputs.size() != 2) continue;
    for (std::size_t c = 0; c < 2; ++c) {
      if (const auto value = scalar_constant(g, node.inputs[c]); value && node.inputs[1 - c] != node.inputs[c]) {
        scale *= *value;
        a.fused.inputs[operand] = node.inputs[1 - c];
        a.absorbed.push_back(*mul);
        break;
      }
    }
  }
  if (scale != 1.0F) {
    onnx::Attribute attr;
    attr.kind = onnx::Attribute::Kind::kFloat;
    attr.f = scale;
    a.fused.attributes["scale"] = attr;
  }
}

// Q, K and V are usually Transposes of the projections ([batch, tokens, heads, dims] to heads first):
// the kernel reads the projections through the permutation instead of a copy. The heads are usually put
// back beside the tokens before the output projection: the kernel writes its rows there instead (the
// last axis must stay last, so that a row of the product stays contiguous).
void absorb_transposes(const onnx::GraphEditor& g, Attention& a, const std::set<std::string>& keep) {
  for (std::size_t operand = 0; operand < 3; ++operand) {
    const auto t = g.producer(a.fused.inputs[operand]);
    if (!t || !g.internal(a.fused.inputs[operand], 1, keep)) continue;
    const onnx::Node& node = g.node(*t);
    if (!node.domain.empty() || node.op_type != "Transpose" || node.inputs.size() != 1 || !node.has_attr("perm")) {
      continue;
    }
    a.fused.attributes[std::string("perm_") + "qkv"[operand]] = ints_attribute(node.attr_ints("perm"));
    a.fused.inputs[operand] = node.inputs[0];
    a.absorbed.push_back(*t);
  }
  if (const auto t = only_reader(g, a.fused.outputs.at(0), "Transpose", keep)) {
    const onnx::Node& node = g.node(*t);
    const std::vector<int64_t> perm = node.has_attr("perm") ? node.attr_ints("perm") : std::vector<int64_t>{};
    if (perm.size() >= 2 && perm.back() == static_cast<int64_t>(perm.size()) - 1 && node.outputs.size() == 1) {
      a.fused.attributes["perm_out"] = ints_attribute(perm);
      a.fused.outputs = node.outputs;
      a.absorbed.push_back(*t);
    }
  }
}

}  // namespace

PassChanges fuse_attention(PassContext& ctx) {
  onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    std::optional<Attention> a = match_core(g, id, ctx);
    if (!a) continue;
    absorb_scales(g, *a, ctx.keep);
    absorb_transposes(g, *a, ctx.keep);
    const onnx::NodeId pv = a->pv;
    for (onnx::NodeId k : a->absorbed) {
      if (k != pv) g.remove(k);
    }
    g.remove(id);
    g.replace(pv, std::move(a->fused));  // at V's product: V is computed by then
    ++changes.rewritten;
    changes.fused += a->absorbed.size();  // the PV MatMul's place is taken, the QK one removed
  }
  if (changes.rewritten > 0) import_internal_domain(ctx.model);
  return changes;
}

}  // namespace detrq::runtime::passes
