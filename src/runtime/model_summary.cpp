// Model summaries for `detrq inspect`: static facts from the file, cost and memory from a Session plan.
#include "detrq/runtime/model_summary.h"

#include "detrq/core/error.h"
#include "detrq/onnx/graph_passes.h"

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
    if (node.op_type == "Conv" && b && b->size() >= 2) {
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
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported && e.kind() != ErrorKind::kUsage) throw;
    s.plan_error = e.what();
  }
  return s;
}

}  // namespace detrq::runtime
