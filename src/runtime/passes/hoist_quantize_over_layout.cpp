// Pass "hoist-quantize-over-layout": a per-tensor QuantizeLinear whose input comes through layout nodes
// (Reshape, Transpose, Squeeze, Unsqueeze, Flatten) and multiplications by a float scalar constant is
// moved above the layout nodes: X -> Reshape -> Transpose -> Mul(c) -> QuantizeLinear becomes X -> Mul(c)
// -> QuantizeLinear -> Reshape -> Transpose. Exact (layout nodes only move elements, and a scalar Mul and
// a per-tensor QuantizeLinear treat every element alike), and it lets int8 stay int8 between layers: the
// QuantizeLinear now follows the layer that computes X, whose requantizing epilogue absorbs it
// (fuse-qmatmul-epilogue), and the layout nodes move one byte per element instead of four. This is the
// attention's Q, K and V in ViT-style exports: QMatMulF + bias -> Reshape to heads -> Transpose -> scale
// -> QuantizeLinear. Only where X comes from a QMatMulF (through its bias); every tensor that disappears
// has one reader and is neither kept nor a graph output.
#include <string>
#include <vector>

#include "runtime/internal_domain.h"
#include "runtime/passes/match_util.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {
namespace {

bool is_layout(const onnx::Node& node) {
  if (!node.domain.empty() && node.domain != "ai.onnx") return false;
  const std::string& op = node.op_type;
  return node.outputs.size() == 1 && !node.inputs.empty() &&
         (op == "Reshape" || op == "Transpose" || op == "Squeeze" || op == "Unsqueeze" || op == "Flatten");
}

bool is_scalar_mul(const onnx::GraphEditor& g, const onnx::Node& node) {
  return node.domain.empty() && node.op_type == "Mul" && node.inputs.size() == 2 && node.outputs.size() == 1 &&
         !g.constant(node.inputs[0]) && scalar_constant(g, node.inputs[1]).has_value();
}

// The chain above QuantizeLinear `q`, top first: layout nodes and scalar Muls, each output read by the
// next node alone.
std::vector<onnx::NodeId> chain_above(const onnx::GraphEditor& g, const onnx::Node& q, const std::set<std::string>& keep) {
  std::vector<onnx::NodeId> chain;
  std::string tensor = q.inputs[0];
  while (g.internal(tensor, 1, keep)) {
    const auto p = g.producer(tensor);
    if (!p) break;
    const onnx::Node& node = g.node(*p);
    if (!is_layout(node) && !is_scalar_mul(g, node)) break;
    chain.insert(chain.begin(), *p);
    tensor = node.inputs[0];
  }
  return chain;
}

// Whether `tensor` is computed by a QMatMulF, directly or through Adds and Muls by constants (its bias):
// the layer whose epilogue can then absorb the hoisted QuantizeLinear. Elsewhere (an attention's output,
// which its own fusion reads through a Transpose) the layout nodes stay where they are.
bool from_qmatmul(const onnx::GraphEditor& g, std::string tensor) {
  for (int hops = 0; hops < 4; ++hops) {
    const auto p = g.producer(tensor);
    if (!p) return false;
    const onnx::Node& node = g.node(*p);
    if (node.domain == kInternalDomain && node.op_type == "QMatMulF") return true;
    if (!node.domain.empty() || (node.op_type != "Add" && node.op_type != "Mul") || node.inputs.size() != 2) return false;
    const bool first_constant = g.constant(node.inputs[0]) != nullptr;
    if (first_constant == (g.constant(node.inputs[1]) != nullptr)) return false;
    tensor = node.inputs[first_constant ? 1 : 0];
  }
  return false;
}

}  // namespace

PassChanges hoist_quantize_over_layout(PassContext& ctx) {
  onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id) || !per_tensor_quantize(g, g.node(id))) continue;
    const onnx::Node q = g.node(id);
    const std::vector<onnx::NodeId> chain = chain_above(g, q, ctx.keep);
    std::vector<onnx::NodeId> layout, muls;
    for (onnx::NodeId n : chain) (is_layout(g.node(n)) ? layout : muls).push_back(n);
    if (layout.empty() || !from_qmatmul(g, g.node(chain.front()).inputs[0])) continue;
    // The new order, written into the same slots (chain then q, in graph order): every new node then
    // comes after what it reads (X and constants precede the chain) and before the readers of q's output.
    std::vector<onnx::Node> rewritten;
    std::string current = g.node(chain.front()).inputs[0];
    for (onnx::NodeId n : muls) {
      onnx::Node mul = g.node(n);
      mul.inputs[0] = current;
      mul.outputs[0] += "/before_layout";
      current = mul.outputs[0];
      rewritten.push_back(std::move(mul));
    }
    onnx::Node quantize = q;
    quantize.inputs[0] = current;
    quantize.outputs[0] += "/before_layout";
    current = quantize.outputs[0];
    rewritten.push_back(std::move(quantize));
    for (std::size_t i = 0; i < layout.size(); ++i) {
      onnx::Node node = g.node(layout[i]);
      node.inputs[0] = current;
      node.outputs[0] = i + 1 == layout.size() ? q.outputs[0] : node.outputs[0] + "/codes";
      current = node.outputs[0];
      rewritten.push_back(std::move(node));
    }
    std::vector<onnx::NodeId> slots = chain;
    slots.push_back(id);
    for (std::size_t i = 0; i < slots.size(); ++i) g.replace(slots[i], std::move(rewritten[i]));
    changes.rewritten += slots.size();
  }
  return changes;
}

}  // namespace detrq::runtime::passes
