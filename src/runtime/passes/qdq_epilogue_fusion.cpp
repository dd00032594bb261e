// Requantizing epilogues for QMatMulF (see qdq_epilogue_fusion.h).
#include "runtime/passes/qdq_epilogue_fusion.h"
#include "runtime/passes/pass.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "runtime/internal_domain.h"
#include "runtime/passes/qdq_graph_index.h"

namespace detrq::runtime {
namespace {

bool near(std::optional<float> v, double want) { return v && std::abs(*v - want) <= 1e-5 * std::abs(want); }

// x -> Div(x, sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5): the nodes, the last Mul last.
std::optional<std::vector<std::size_t>> match_gelu(const QdqGraphIndex& g, const onnx::Graph& graph,
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
  if (!add || !near(g.scalar(QdqGraphIndex::other_input(graph.nodes[*add], e).value_or("")), 1.0)) {
    return std::nullopt;
  }
  const auto mul_x = g.only_reader(graph.nodes[*add].outputs.at(0), "Mul");
  if (mul_x != mul || QdqGraphIndex::other_input(graph.nodes[*mul], graph.nodes[*add].outputs.at(0)) != x) {
    return std::nullopt;
  }
  const std::string& m = graph.nodes[*mul].outputs.at(0);
  const auto half = g.only_reader(m, "Mul");
  if (!half || !near(g.scalar(QdqGraphIndex::other_input(graph.nodes[*half], m).value_or("")), 0.5)) {
    return std::nullopt;
  }
  return std::vector<std::size_t>{*div, *erf, *add, *mul, *half};
}

// The chain after one QMatMulF: its inputs 5-9 filled in `fused`, the nodes it absorbs, its last tensor.
struct Chain {
  std::vector<std::size_t> absorbed;
  std::string out;
};

// A binary node reading `out` whose other input satisfies `fits`: that input, and the node.
template <typename Fits>
std::optional<std::pair<std::size_t, std::string>> binary_step(const QdqGraphIndex& g, const onnx::Graph& graph,
                                                               const std::string& out, const char* op, Fits fits) {
  const auto node = g.only_reader(out, op);
  if (!node) return std::nullopt;
  const auto other = QdqGraphIndex::other_input(graph.nodes[*node], out);
  if (!other || other->empty() || !fits(*other)) return std::nullopt;
  return std::make_pair(*node, *other);
}

Chain absorb_chain(const QdqGraphIndex& g, const onnx::Graph& graph, onnx::Node& fused, int64_t n) {
  Chain c{{}, fused.outputs[0]};
  auto follow = [&](std::size_t node) {
    c.absorbed.push_back(node);
    c.out = graph.nodes[node].outputs.at(0);
  };
  const auto constant_n = [&](const std::string& name) { return g.vector_of(name, n); };
  if (const auto bias = binary_step(g, graph, c.out, "Add", constant_n)) {
    fused.inputs[5] = bias->second;
    follow(bias->first);
  }
  if (const auto gelu = match_gelu(g, graph, c.out)) {
    onnx::Attribute act;
    act.kind = onnx::Attribute::Kind::kString;
    act.s = "gelu_erf";
    fused.attributes["activation"] = act;
    c.absorbed.insert(c.absorbed.end(), gelu->begin(), gelu->end() - 1);
    follow(gelu->back());
  }
  if (const auto scale = binary_step(g, graph, c.out, "Mul", constant_n)) {
    fused.inputs[6] = scale->second;
    follow(scale->first);
  }
  const auto computed = [&](const std::string& name) { return g.initializer(name) == nullptr; };
  if (const auto residual = binary_step(g, graph, c.out, "Add", computed)) {
    fused.inputs[7] = residual->second;
    follow(residual->first);
  }
  if (const auto q = g.only_reader(c.out, "QuantizeLinear"); q && g.per_tensor_quantize(graph.nodes[*q])) {
    fused.inputs[8] = graph.nodes[*q].inputs[1];
    fused.inputs[9] = graph.nodes[*q].inputs[2];
    follow(*q);
  }
  return c;
}

}  // namespace

std::size_t fuse_qmatmul_epilogues(onnx::Graph& graph, const std::set<std::string>& keep) {
  const QdqGraphIndex g(graph, keep);
  std::vector<bool> removed(graph.nodes.size(), false);
  std::vector<std::pair<std::size_t, onnx::Node>> replacements;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    const onnx::Node& mm = graph.nodes[i];
    if (mm.domain != kInternalDomain || mm.op_type != "QMatMulF" || mm.inputs.size() != 5 || mm.outputs.size() != 1) {
      continue;
    }
    const core::Tensor* w = g.initializer(mm.inputs[3]);
    if (!w || w->rank() != 2 || w->dim(0) == 0) continue;
    onnx::Node fused = mm;
    fused.inputs.resize(10);
    const Chain chain = absorb_chain(g, graph, fused, w->dim(1));
    if (chain.absorbed.empty() ||
        std::any_of(chain.absorbed.begin(), chain.absorbed.end(), [&](std::size_t k) { return removed[k]; })) {
      continue;
    }
    while (!fused.inputs.empty() && fused.inputs.back().empty()) fused.inputs.pop_back();
    fused.outputs = {chain.out};
    for (std::size_t k : chain.absorbed) removed[k] = true;
    replacements.emplace_back(i, std::move(fused));
  }
  const std::size_t count = replacements.size();
  if (count > 0) replace_and_remove(graph, std::move(removed), std::move(replacements));
  return count;
}

}  // namespace detrq::runtime

namespace detrq::runtime::passes {

// Pass "fuse-qmatmul-epilogue": written over onnx::Graph with its own index (qdq_graph_index.h).
PassChanges fuse_qmatmul_epilogue(PassContext& ctx) {
  return run_graph_fusion(ctx, [&](onnx::Graph& graph) { return runtime::fuse_qmatmul_epilogues(graph, ctx.keep); });
}

}  // namespace detrq::runtime::passes
