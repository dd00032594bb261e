// Operator fusion on the graph before planning (see fusion.h).
#include "fusion.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

namespace detrq::runtime {
namespace {

class GraphIndex {
 public:
  GraphIndex(const onnx::Graph& graph, const std::set<std::string>& keep) : graph_(graph), keep_(keep) {
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
      for (const auto& in : graph.nodes[i].inputs) {
        if (!in.empty()) consumers_[in].push_back(i);
      }
      for (const auto& out : graph.nodes[i].outputs) producers_[out] = i;
    }
    for (const auto& out : graph.outputs) outputs_.insert(out.name);
  }

  const std::vector<std::size_t>& consumers(const std::string& name) const {
    static const std::vector<std::size_t> kNone;
    auto it = consumers_.find(name);
    return it == consumers_.end() ? kNone : it->second;
  }
  // A tensor that may disappear: read by exactly `readers` nodes, not a graph output, not kept.
  bool internal(const std::string& name, std::size_t readers) const {
    return consumers(name).size() == readers && !outputs_.count(name) && !keep_.count(name);
  }
  // The single node reading `name`, when it is internal with one reader of type `op`.
  std::optional<std::size_t> only_reader(const std::string& name, const char* op) const {
    if (!internal(name, 1)) return std::nullopt;
    const std::size_t n = consumers(name)[0];
    const onnx::Node& node = graph_.nodes[n];
    if (!node.domain.empty() || node.op_type != op) return std::nullopt;
    return n;
  }
  // The initializer `name` is, directly or through Identity nodes (exporters share weights that way;
  // the Session folds those Identities later).
  std::optional<std::size_t> producer(const std::string& name) const {
    auto p = producers_.find(name);
    if (p == producers_.end()) return std::nullopt;
    return p->second;
  }
  const core::Tensor* initializer(const std::string& name) const {
    std::string current = name;
    for (int hops = 0; hops < 8; ++hops) {
      auto it = graph_.initializers.find(current);
      if (it != graph_.initializers.end()) return &it->second;
      auto p = producers_.find(current);
      if (p == producers_.end()) return nullptr;
      const onnx::Node& node = graph_.nodes[p->second];
      if (!node.domain.empty() || node.op_type != "Identity" || node.inputs.size() != 1) return nullptr;
      current = node.inputs[0];
    }
    return nullptr;
  }
  // The value of a float32 scalar (any shape of one element) initializer.
  std::optional<float> scalar(const std::string& name) const {
    const core::Tensor* t = initializer(name);
    if (!t || t->dtype() != core::DType::kFloat32 || t->numel() != 1) return std::nullopt;
    return t->data<float>()[0];
  }
  // The input of binary `node` that is not `name` (nullopt unless exactly one input is `name`).
  static std::optional<std::string> other_input(const onnx::Node& node, const std::string& name) {
    if (node.inputs.size() != 2) return std::nullopt;
    if (node.inputs[0] == name && node.inputs[1] != name) return node.inputs[1];
    if (node.inputs[1] == name && node.inputs[0] != name) return node.inputs[0];
    return std::nullopt;
  }

 private:
  const onnx::Graph& graph_;
  const std::set<std::string>& keep_;
  std::map<std::string, std::vector<std::size_t>> consumers_;
  std::map<std::string, std::size_t> producers_;
  std::set<std::string> outputs_;
};

// Puts each new node at the index it names (replacing the node there) and drops the removed ones.
std::size_t apply_replacements(onnx::Graph& graph, const std::vector<bool>& removed,
                               std::vector<std::pair<std::size_t, onnx::Node>> replacements) {
  if (replacements.empty()) return 0;
  std::sort(replacements.begin(), replacements.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<onnx::Node> nodes;
  nodes.reserve(graph.nodes.size());
  std::size_t r = 0;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    if (r < replacements.size() && replacements[r].first == i) {
      nodes.push_back(std::move(replacements[r++].second));
    } else if (!removed[i]) {
      nodes.push_back(std::move(graph.nodes[i]));
    }
  }
  graph.nodes = std::move(nodes);
  return replacements.size();
}

bool near(std::optional<float> v, double want) { return v && std::abs(*v - want) <= 1e-5 * std::abs(want); }

// x -> Div(x, sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5): the nodes (Div first, the last
// Mul last) when `x` feeds exactly this pattern.
std::optional<std::vector<std::size_t>> match_gelu(const GraphIndex& g, const onnx::Graph& graph,
                                                   const std::string& x) {
  if (!g.internal(x, 2)) return std::nullopt;
  std::optional<std::size_t> div, mul;
  for (std::size_t n : g.consumers(x)) {
    const onnx::Node& node = graph.nodes[n];
    if (!node.domain.empty()) return std::nullopt;
    if (node.op_type == "Div" && node.inputs.size() == 2 && node.inputs[0] == x) div = n;
    if (node.op_type == "Mul") mul = n;
  }
  if (!div || !mul || !near(g.scalar(graph.nodes[*div].inputs[1]), std::sqrt(2.0))) return std::nullopt;
  const auto erf = g.only_reader(graph.nodes[*div].outputs.at(0), "Erf");
  if (!erf) return std::nullopt;
  const std::string& e = graph.nodes[*erf].outputs.at(0);
  const auto add = g.only_reader(e, "Add");
  if (!add || !near(g.scalar(GraphIndex::other_input(graph.nodes[*add], e).value_or("")), 1.0)) return std::nullopt;
  const auto mul_x = g.only_reader(graph.nodes[*add].outputs.at(0), "Mul");
  if (mul_x != mul || GraphIndex::other_input(graph.nodes[*mul], graph.nodes[*add].outputs.at(0)) != x) {
    return std::nullopt;
  }
  const std::string& m = graph.nodes[*mul].outputs.at(0);
  const auto half = g.only_reader(m, "Mul");
  if (!half || !near(g.scalar(GraphIndex::other_input(graph.nodes[*half], m).value_or("")), 0.5)) return std::nullopt;
  return std::vector<std::size_t>{*div, *erf, *add, *mul, *half};
}

}  // namespace

std::size_t fuse_matmul_epilogues(onnx::Graph& graph, const std::set<std::string>& keep) {
  const GraphIndex g(graph, keep);
  std::vector<bool> removed(graph.nodes.size(), false);
  std::vector<std::pair<std::size_t, onnx::Node>> replacements;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    const onnx::Node& mm = graph.nodes[i];
    if (!mm.domain.empty() || mm.op_type != "MatMul" || mm.inputs.size() != 2 || mm.outputs.size() != 1) continue;
    const core::Tensor* w = g.initializer(mm.inputs[1]);
    if (!w || w->dtype() != core::DType::kFloat32 || w->shape().size() != 2) continue;
    const int64_t n = w->shape()[1];
    const std::string& product = mm.outputs[0];
    const auto add = g.only_reader(product, "Add");
    if (!add) continue;
    const auto bias_name = GraphIndex::other_input(graph.nodes[*add], product);
    const core::Tensor* bias = bias_name ? g.initializer(*bias_name) : nullptr;
    // A 1-D bias broadcasts along the last axis and adds no axes to the product.
    if (!bias || bias->dtype() != core::DType::kFloat32 || bias->shape() != core::Shape{n}) {
      continue;
    }
    onnx::Node fused;
    fused.name = mm.name;
    fused.op_type = "FusedMatMul";
    fused.domain = kDetrqDomain;
    fused.inputs = {mm.inputs[0], mm.inputs[1], *bias_name};
    std::vector<std::size_t> absorbed{*add};
    std::string out = graph.nodes[*add].outputs.at(0);
    if (const auto gelu = match_gelu(g, graph, out)) {
      absorbed.insert(absorbed.end(), gelu->begin(), gelu->end());
      out = graph.nodes[gelu->back()].outputs.at(0);
      onnx::Attribute act;
      act.kind = onnx::Attribute::Kind::kString;
      act.s = "gelu_erf";
      fused.attributes["activation"] = act;
    }
    // A LayerScale (Mul by a constant [N]) and then a residual Add of another computed tensor, as a
    // transformer block ends: y = (product + bias) * scale + residual, still in the GEMM's epilogue.
    if (const auto mul = g.only_reader(out, "Mul")) {
      const auto scale_name = GraphIndex::other_input(graph.nodes[*mul], out);
      const core::Tensor* scale = scale_name ? g.initializer(*scale_name) : nullptr;
      if (scale && scale->dtype() == core::DType::kFloat32 && scale->shape() == core::Shape{n}) {
        absorbed.push_back(*mul);
        fused.inputs.push_back(*scale_name);
        out = graph.nodes[*mul].outputs.at(0);
      }
    }
    if (const auto add_residual = g.only_reader(out, "Add")) {
      const auto residual = GraphIndex::other_input(graph.nodes[*add_residual], out);
      if (residual && !residual->empty() && !g.initializer(*residual)) {
        absorbed.push_back(*add_residual);
        if (fused.inputs.size() < 4) fused.inputs.emplace_back();  // no scale: input 3 omitted
        fused.inputs.push_back(*residual);
        out = graph.nodes[*add_residual].outputs.at(0);
      }
    }
    if (std::any_of(absorbed.begin(), absorbed.end(), [&](std::size_t k) { return removed[k]; })) continue;
    fused.outputs = {out};
    for (std::size_t k : absorbed) removed[k] = true;
    removed[i] = true;
    replacements.emplace_back(i, std::move(fused));
  }
  return apply_replacements(graph, removed, std::move(replacements));  // each at its MatMul's place
}

std::size_t fuse_attention(onnx::Graph& graph, const std::set<std::string>& keep, int64_t softmax_opset) {
  const GraphIndex g(graph, keep);
  std::vector<bool> removed(graph.nodes.size(), false);
  std::vector<std::pair<std::size_t, onnx::Node>> replacements;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    const onnx::Node& qk = graph.nodes[i];
    if (!qk.domain.empty() || qk.op_type != "MatMul" || qk.inputs.size() != 2 || qk.outputs.size() != 1) continue;
    // Products of two activations only: a constant K is a linear layer, not attention.
    if (g.initializer(qk.inputs[0]) || g.initializer(qk.inputs[1])) continue;
    const auto softmax = g.only_reader(qk.outputs[0], "Softmax");
    if (!softmax || removed[*softmax]) continue;
    const onnx::Node& sm = graph.nodes[*softmax];
    // Over the last axis: -1 explicitly, or by default from opset 13 (before, the default was 1).
    const int64_t axis = sm.attr_int("axis", softmax_opset >= 13 ? -1 : 1);
    if (axis != -1 || sm.outputs.size() != 1) continue;
    const auto pv = g.only_reader(sm.outputs[0], "MatMul");
    if (!pv || removed[*pv] || graph.nodes[*pv].inputs.size() != 2 || graph.nodes[*pv].inputs[0] != sm.outputs[0] ||
        graph.nodes[*pv].inputs[1] == sm.outputs[0]) {
      continue;
    }
    onnx::Node fused;
    fused.name = qk.name;
    fused.op_type = "AttentionSoftmax";
    fused.domain = kDetrqDomain;
    fused.inputs = {qk.inputs[0], qk.inputs[1], graph.nodes[*pv].inputs[1]};
    fused.outputs = graph.nodes[*pv].outputs;
    // Exports scale Q and K (each by the root of 1/sqrt(d)) with a Mul by a constant: absorbed, the
    // product is scaled once by the GEMM instead of two passes over Q and K.
    float scale = 1.0F;
    std::vector<std::size_t> scalers;  // absorbed nodes
    for (std::size_t operand = 0; operand < 2; ++operand) {
      const auto mul = g.producer(fused.inputs[operand]);
      if (!mul || removed[*mul] || !g.internal(fused.inputs[operand], 1)) continue;
      const onnx::Node& node = graph.nodes[*mul];
      if (!node.domain.empty() || node.op_type != "Mul" || node.inputs.size() != 2) continue;
      for (std::size_t c = 0; c < 2; ++c) {
        if (const auto value = g.scalar(node.inputs[c]); value && node.inputs[1 - c] != node.inputs[c]) {
          scale *= *value;
          fused.inputs[operand] = node.inputs[1 - c];
          scalers.push_back(*mul);
          break;
        }
      }
    }
    if (scale != 1.0F) {
      onnx::Attribute attr;
      attr.kind = onnx::Attribute::Kind::kFloat;
      attr.f = scale;
      fused.attributes["scale"] = attr;
    }
    // Q, K and V are usually Transposes of the projections ([batch, tokens, heads, dims] to heads
    // first): the kernel reads the projections through the permutation instead of a copy.
    for (std::size_t operand = 0; operand < 3; ++operand) {
      const auto t = g.producer(fused.inputs[operand]);
      if (!t || removed[*t] || !g.internal(fused.inputs[operand], 1)) continue;
      const onnx::Node& node = graph.nodes[*t];
      if (!node.domain.empty() || node.op_type != "Transpose" || node.inputs.size() != 1 || !node.has_attr("perm")) {
        continue;
      }
      onnx::Attribute perm;
      perm.kind = onnx::Attribute::Kind::kInts;
      perm.ints = node.attr_ints("perm");
      fused.attributes[std::string("perm_") + "qkv"[operand]] = perm;
      fused.inputs[operand] = node.inputs[0];
      scalers.push_back(*t);
    }
    // The heads are usually put back beside the tokens ([batch, heads, tokens, dims] to [batch, tokens,
    // heads, dims]) before the output projection: the kernel writes its rows there instead (the last axis
    // must stay last, so that a row of the product stays contiguous).
    if (const auto t = g.only_reader(fused.outputs.at(0), "Transpose"); t && !removed[*t]) {
      const onnx::Node& node = graph.nodes[*t];
      const std::vector<int64_t> perm = node.has_attr("perm") ? node.attr_ints("perm") : std::vector<int64_t>{};
      if (perm.size() >= 2 && perm.back() == static_cast<int64_t>(perm.size()) - 1 && node.outputs.size() == 1) {
        onnx::Attribute attr;
        attr.kind = onnx::Attribute::Kind::kInts;
        attr.ints = perm;
        fused.attributes["perm_out"] = attr;
        fused.outputs = node.outputs;
        scalers.push_back(*t);
      }
    }
    for (std::size_t k : scalers) removed[k] = true;
    removed[i] = removed[*softmax] = removed[*pv] = true;
    replacements.emplace_back(*pv, std::move(fused));  // at V's product: V is computed by then
  }
  return apply_replacements(graph, removed, std::move(replacements));
}

}  // namespace detrq::runtime
