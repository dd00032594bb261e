// Pass "fuse-qmatmul-epilogue": requantizing epilogues for QMatMulF. For every com.detrq QMatMulF with a
// constant weight [K > 0, N], absorbs the chain its product feeds, each step optional, in this order:
// Add(constant bias [N]), the erf GELU (Div by sqrt 2, Erf, Add 1, Mul, Mul 0.5), Mul(constant [N]),
// Add(a computed residual), QuantizeLinear (one scale, one int8/uint8 zero point, both constants); the Mul
// may also be by a float scalar constant. The
// QMatMulF then writes the chain's last tensor: floats, or the QuantizeLinear's codes, so int8 stays int8
// from layer to layer. Only tensors one node reads and that are neither graph outputs nor kept disappear.
#include <optional>
#include <utility>
#include <vector>

#include "runtime/internal_domain.h"
#include "runtime/passes/match_util.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {
namespace {

// The chain after one QMatMulF: its inputs 5-9 filled in `fused`, the nodes it absorbs, its last tensor.
struct Chain {
  std::vector<onnx::NodeId> absorbed;
  std::string out;
};

// A binary node reading `out` whose other input satisfies `fits`: the node, and that input.
template <typename Fits>
std::optional<std::pair<onnx::NodeId, std::string>> binary_step(const onnx::GraphEditor& g, const std::string& out,
                                                                const char* op, const std::set<std::string>& keep,
                                                                Fits fits) {
  const auto node = only_reader(g, out, op, keep);
  if (!node) return std::nullopt;
  const auto other = other_input(g.node(*node), out);
  if (!other || other->empty() || !fits(*other)) return std::nullopt;
  return std::make_pair(*node, *other);
}

// A float32 scalar constant as a [n] one: the epilogue scales per column (what a scalar Mul by the
// attention's 1/sqrt(d) is, once hoist-quantize-over-layout has moved it next to the layer).
std::string per_column(onnx::GraphEditor& g, const std::string& scalar, int64_t n) {
  const std::string name = scalar + "/per_column_" + std::to_string(n);
  if (!g.initializer(name)) {
    g.set_initializer(name, core::Tensor::from_vector<float>({n}, std::vector<float>(static_cast<std::size_t>(n),
                                                                                      *scalar_constant(g, scalar))));
  }
  return name;
}

Chain absorb_chain(onnx::GraphEditor& g, const std::set<std::string>& keep, onnx::Node& fused, int64_t n) {
  Chain c{{}, fused.outputs[0]};
  auto follow = [&](onnx::NodeId node) {
    c.absorbed.push_back(node);
    c.out = g.node(node).outputs.at(0);
  };
  const auto constant_n = [&](const std::string& name) { return float_vector_constant(g, name, n); };
  if (const auto bias = binary_step(g, c.out, "Add", keep, constant_n)) {
    fused.inputs[5] = bias->second;
    follow(bias->first);
  }
  if (const auto gelu = match_erf_gelu(g, c.out, keep)) {
    fused.attributes["activation"] = string_attribute("gelu_erf");
    c.absorbed.insert(c.absorbed.end(), gelu->begin(), gelu->end() - 1);
    follow(gelu->back());
  }
  const auto scale_like = [&](const std::string& name) {
    return float_vector_constant(g, name, n) || scalar_constant(g, name).has_value();
  };
  if (const auto scale = binary_step(g, c.out, "Mul", keep, scale_like)) {
    fused.inputs[6] = float_vector_constant(g, scale->second, n) ? scale->second : per_column(g, scale->second, n);
    follow(scale->first);
  }
  const auto computed = [&](const std::string& name) { return g.constant(name) == nullptr; };
  if (const auto residual = binary_step(g, c.out, "Add", keep, computed)) {
    fused.inputs[7] = residual->second;
    follow(residual->first);
  }
  if (const auto q = only_reader(g, c.out, "QuantizeLinear", keep); q && per_tensor_quantize(g, g.node(*q))) {
    fused.inputs[8] = g.node(*q).inputs[1];
    fused.inputs[9] = g.node(*q).inputs[2];
    follow(*q);
  }
  return c;
}

}  // namespace

PassChanges fuse_qmatmul_epilogue(PassContext& ctx) {
  onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    const onnx::Node& mm = g.node(id);
    if (mm.domain != kInternalDomain || mm.op_type != "QMatMulF" || mm.inputs.size() != 5 || mm.outputs.size() != 1) {
      continue;
    }
    const core::Tensor* w = g.constant(mm.inputs[3]);
    if (!w || w->rank() != 2 || w->dim(0) == 0) continue;
    onnx::Node fused = mm;
    fused.inputs.resize(10);
    const Chain chain = absorb_chain(g, ctx.keep, fused, w->dim(1));
    if (chain.absorbed.empty()) continue;
    while (!fused.inputs.empty() && fused.inputs.back().empty()) fused.inputs.pop_back();
    fused.outputs = {chain.out};
    for (onnx::NodeId k : chain.absorbed) g.remove(k);
    g.replace(id, std::move(fused));
    ++changes.rewritten;
    changes.fused += chain.absorbed.size();
  }
  if (changes.rewritten > 0) import_internal_domain(ctx.model);
  return changes;
}

}  // namespace detrq::runtime::passes
