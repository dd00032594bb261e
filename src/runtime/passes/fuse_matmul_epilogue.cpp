// Pass "fuse-matmul-epilogue": a MatMul by a constant [K, N] weight with its bias Add becomes one
// com.detrq FusedMatMul (inputs A, B, bias, [scale], [residual]; an omitted scale is an empty name),
// absorbing where present the erf GELU that transformer MLPs spell as Div/Erf/Add/Mul/Mul, a LayerScale
// Mul by a constant [N] and a residual Add of a computed tensor: the GEMM applies them all to each
// output tile on registers. A kept tensor, a graph output or a tensor another node reads is never fused
// away.
#include <cmath>
#include <vector>

#include "runtime/internal_domain.h"
#include "runtime/passes/match_util.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {
namespace {

// A fusion being built: the new node, the nodes it absorbs, and the tensor it now ends at.
struct Epilogue {
  onnx::Node fused;
  std::vector<onnx::NodeId> absorbed;
  std::string out;
};

// The MatMul and its bias Add, when the weight is a float [K, N] constant and the bias a float [N] one.
std::optional<Epilogue> match_bias(const onnx::GraphEditor& g, onnx::NodeId id, const std::set<std::string>& keep) {
  const onnx::Node& mm = g.node(id);
  if (!mm.domain.empty() || mm.op_type != "MatMul" || mm.inputs.size() != 2 || mm.outputs.size() != 1) return {};
  const core::Tensor* w = g.constant(mm.inputs[1]);
  if (!w || w->dtype() != core::DType::kFloat32 || w->shape().size() != 2) return {};
  const auto add = only_reader(g, mm.outputs[0], "Add", keep);
  if (!add) return {};
  const auto bias_name = other_input(g.node(*add), mm.outputs[0]);
  const core::Tensor* bias = bias_name ? g.constant(*bias_name) : nullptr;
  // A 1-D bias broadcasts along the last axis and adds no axes to the product.
  if (!bias || bias->dtype() != core::DType::kFloat32 || bias->shape() != core::Shape{w->shape()[1]}) return {};
  Epilogue e;
  e.fused.name = mm.name;
  e.fused.op_type = "FusedMatMul";
  e.fused.domain = kInternalDomain;
  e.fused.inputs = {mm.inputs[0], mm.inputs[1], *bias_name};
  e.absorbed = {*add};
  e.out = g.node(*add).outputs.at(0);
  return e;
}

// A LayerScale (Mul by a constant [N]) and then a residual Add of another computed tensor, as a
// transformer block ends: y = (product + bias) * scale + residual, still in the GEMM's epilogue.
void absorb_scale_and_residual(const onnx::GraphEditor& g, Epilogue& e, int64_t n, const std::set<std::string>& keep) {
  if (const auto mul = only_reader(g, e.out, "Mul", keep)) {
    const auto scale_name = other_input(g.node(*mul), e.out);
    const core::Tensor* scale = scale_name ? g.constant(*scale_name) : nullptr;
    if (scale && scale->dtype() == core::DType::kFloat32 && scale->shape() == core::Shape{n}) {
      e.absorbed.push_back(*mul);
      e.fused.inputs.push_back(*scale_name);
      e.out = g.node(*mul).outputs.at(0);
    }
  }
  if (const auto add = only_reader(g, e.out, "Add", keep)) {
    const auto residual = other_input(g.node(*add), e.out);
    if (residual && !residual->empty() && !g.constant(*residual)) {
      e.absorbed.push_back(*add);
      if (e.fused.inputs.size() < 4) e.fused.inputs.emplace_back();  // no scale: input 3 omitted
      e.fused.inputs.push_back(*residual);
      e.out = g.node(*add).outputs.at(0);
    }
  }
}

}  // namespace

PassChanges fuse_matmul_epilogue(PassContext& ctx) {
  onnx::GraphEditor& g = ctx.graph;
  PassChanges changes;
  for (onnx::NodeId id = 0; id < g.slot_count(); ++id) {
    if (!g.alive(id)) continue;
    std::optional<Epilogue> e = match_bias(g, id, ctx.keep);
    if (!e) continue;
    if (const auto gelu = match_erf_gelu(g, e->out, ctx.keep)) {
      e->absorbed.insert(e->absorbed.end(), gelu->begin(), gelu->end());
      e->out = g.node(gelu->back()).outputs.at(0);
      e->fused.attributes["activation"] = string_attribute("gelu_erf");
    }
    absorb_scale_and_residual(g, *e, g.constant(g.node(id).inputs[1])->shape()[1], ctx.keep);
    e->fused.outputs = {e->out};
    for (onnx::NodeId k : e->absorbed) g.remove(k);
    g.replace(id, std::move(e->fused));  // at the MatMul's place
    ++changes.rewritten;
    changes.fused += e->absorbed.size();
  }
  if (changes.rewritten > 0) import_internal_domain(ctx.model);
  return changes;
}

}  // namespace detrq::runtime::passes
