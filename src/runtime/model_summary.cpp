// Model summaries for `detrq inspect`: static facts from the file, cost and memory from a Session plan.
#include "detrq/runtime/model_summary.h"

#include "detrq/core/error.h"
#include "detrq/onnx/graph_passes.h"
#include "runtime/internal_domain.h"

namespace detrq::runtime {
namespace {
using core::Shape;

const Shape* shape_of(const onnx::Model& m, const std::string& name) {
  if (auto it = m.graph.value_info.find(name); it != m.graph.value_info.end()) return &it->second.shape;
  if (auto it = m.graph.initializers.find(name); it != m.graph.initializers.end()) return &it->second.shape();
  for (const auto& in : m.graph.inputs) {
    if (in.name == name) return &in.shape;
  }
  return nullptr;
}

// The size of a logical axis of an operand the fused attention reads through a permutation (perm_q,
// perm_k, perm_v: logical axis i is the stored axis perm[i]); `from_end` 1 is the last axis.
int64_t permuted_dim(const Shape& stored, const std::vector<int64_t>& perm, std::size_t from_end) {
  if (from_end > stored.size()) return 0;
  const std::size_t logical = stored.size() - from_end;
  if (perm.empty()) return stored[logical];
  if (perm.size() != stored.size()) return 0;
  const int64_t axis = perm[logical];
  return axis >= 0 && axis < static_cast<int64_t>(stored.size()) ? stored[static_cast<std::size_t>(axis)] : 0;
}
}  // namespace

int64_t estimate_flops(const onnx::Model& planned) {
  int64_t total = 0;
  for (const auto& node : planned.graph.nodes) {
    if (node.outputs.empty() || node.outputs[0].empty()) continue;
    const Shape* out = shape_of(planned, node.outputs[0]);
    if (!out) continue;
    const int64_t out_numel = core::shape_numel(*out);
    const Shape* a = node.inputs.empty() ? nullptr : shape_of(planned, node.inputs[0]);
    const Shape* b = node.inputs.size() < 2 ? nullptr : shape_of(planned, node.inputs[1]);
    // The fused operators of a plan (src/runtime/passes) count as what they replace: QConvF's and
    // QMatMulF's weight is their fourth input; AttentionSoftmax computes Q x K (m x n x d) and the
    // probabilities times V (m x dv x n) for each of its outputs' matrices.
    const bool internal = node.domain == kInternalDomain;
    const Shape* weight = internal && node.inputs.size() > 3 ? shape_of(planned, node.inputs[3]) : nullptr;
    if (internal && node.op_type == "FusedMatMul" && a && !a->empty()) {
      total += 2 * out_numel * a->back();
    } else if (internal && node.op_type == "QMatMulF" && weight && weight->size() == 2) {
      total += 2 * out_numel * (*weight)[0];
    } else if (internal && node.op_type == "QConvF" && weight && weight->size() >= 2) {
      total += 2 * out_numel * core::shape_numel(Shape(weight->begin() + 1, weight->end()));
    } else if (internal && node.op_type == "AttentionSoftmax" && a && b) {
      const int64_t d = permuted_dim(*a, node.attr_ints("perm_q"), 1);
      const int64_t n = permuted_dim(*b, node.attr_ints("perm_k"), 1);
      const int64_t dv = out->empty() ? 0 : out->back();
      if (dv > 0) total += 2 * out_numel * n + 2 * (out_numel / dv) * n * d;
    } else if (node.op_type == "Conv" && b && b->size() >= 2) {
      // Each output element sums C_in/group x kernel products.
      total += 2 * out_numel * core::shape_numel(Shape(b->begin() + 1, b->end()));
    } else if (node.op_type == "ConvTranspose" && a && b && b->size() >= 2) {
      total += 2 * core::shape_numel(*a) * core::shape_numel(Shape(b->begin() + 1, b->end()));
    } else if (node.op_type == "MatMul" && a && !a->empty()) {
      total += 2 * out_numel * a->back();
    } else if (node.op_type == "Gemm" && a && a->size() == 2) {
      total += 2 * out_numel * (node.attr_int("transA", 0) ? (*a)[0] : (*a)[1]);
    } else {
      total += out_numel;
    }
  }
  return total;
}

ModelSummary summarize_model(const onnx::Model& model, const SessionOptions& options) {
  ModelSummary s;
  s.opset = model.opset();
  s.ir_version = model.ir_version;
  s.producer = model.producer_name + (model.producer_version.empty() ? "" : " " + model.producer_version);
  s.inputs = model.graph.inputs;
  s.outputs = model.graph.outputs;
  s.nodes = model.graph.nodes.size();
  for (const auto& node : model.graph.nodes) {
    ++s.operator_counts[node.domain.empty() ? node.op_type : node.domain + ":" + node.op_type];
  }
  onnx::Graph weights;
  weights.nodes = model.graph.nodes;
  weights.initializers = model.graph.initializers;
  onnx::constants_to_initializers(weights);
  for (const auto& [name, t] : weights.initializers) {
    s.parameters += t.numel();
    s.parameter_bytes += t.nbytes();
  }
  try {
    Session session(model, options);
    s.planned = true;
    s.inputs = session.inputs();
    s.outputs = session.outputs();
    s.planned_nodes = session.model().graph.nodes.size();
    s.flops = estimate_flops(session.model());
    s.arena_bytes = session.arena_bytes();
    s.planned_peak_bytes = session.planned_peak_bytes();
    s.passes = session.pass_reports();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported && e.kind() != ErrorKind::kUsage) throw;
    s.plan_error = e.what();
  }
  return s;
}

}  // namespace detrq::runtime
