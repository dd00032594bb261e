// Multiply-add counting over a Session plan's inferred shapes.
#include "detrq/quant/mac_count.h"

#include <map>

namespace detrq::quant {
namespace {
using core::Shape;

bool is_mac_node(const onnx::Node& n) {
  return (n.op_type == "Conv" || n.op_type == "MatMul" || n.op_type == "Gemm") &&
         (n.domain.empty() || n.domain == "ai.onnx");
}

const Shape* shape_in(const onnx::Model& planned, const onnx::Model& original, const std::string& name) {
  for (const onnx::Model* m : {&planned, &original}) {
    if (auto it = m->graph.value_info.find(name); it != m->graph.value_info.end()) return &it->second.shape;
    if (auto it = m->graph.initializers.find(name); it != m->graph.initializers.end()) return &it->second.shape();
    for (const auto& in : m->graph.inputs) {
      if (in.name == name) return &in.shape;
    }
  }
  return nullptr;
}

// Multiply-adds of one node: output elements times the length of the sum behind each.
int64_t macs_of(const onnx::Node& n, const Shape* a, const Shape* b, const Shape* out) {
  // A plan may compute a MatMul's result under another name (a fused projection): A times B's columns.
  if (!out && n.op_type == "MatMul" && a && b && b->size() == 2) return core::shape_numel(*a) * b->back();
  if (!out) return 0;
  const int64_t out_numel = core::shape_numel(*out);
  if (n.op_type == "Conv" && b && b->size() >= 2) return out_numel * core::shape_numel(Shape(b->begin() + 1, b->end()));
  if (n.op_type == "MatMul" && a && !a->empty()) return out_numel * a->back();
  if (n.op_type == "Gemm" && a && a->size() == 2) return out_numel * (n.attr_int("transA", 0) ? (*a)[0] : (*a)[1]);
  return 0;
}
}  // namespace

std::map<std::string, int64_t> node_macs(const onnx::Model& model, const runtime::SessionOptions& options) {
  runtime::SessionOptions plan = options;
  plan.fuse_operators = false;
  plan.fuse_qdq = false;
  plan.threads = 1;
  runtime::Session session(model, plan);
  const onnx::Model& planned = session.model();
  std::map<std::string, int64_t> out;
  for (const auto& n : model.graph.nodes) {
    if (!is_mac_node(n) || n.outputs.empty()) continue;
    const Shape* a = n.inputs.empty() ? nullptr : shape_in(planned, model, n.inputs[0]);
    const Shape* b = n.inputs.size() < 2 ? nullptr : shape_in(planned, model, n.inputs[1]);
    out[n.name] = macs_of(n, a, b, shape_in(planned, model, n.outputs[0]));
  }
  return out;
}

MacCount count_macs(const std::map<std::string, int64_t>& macs, const std::vector<NodeDecision>& decisions) {
  MacCount c;
  for (const auto& d : decisions) {
    auto it = macs.find(d.node);
    NodeMacs n{d.node, d.op_type, it == macs.end() ? 0 : it->second, d.quantize};
    c.total += n.macs;
    if (n.int8) c.int8 += n.macs;
    c.nodes.push_back(std::move(n));
  }
  return c;
}

MacCount count_qdq_macs(const onnx::Model& qdq_model, const runtime::SessionOptions& options) {
  std::map<std::string, const onnx::Node*> producer;
  for (const auto& n : qdq_model.graph.nodes) {
    for (const auto& o : n.outputs) producer[o] = &n;
  }
  auto dequantized = [&](const std::string& t) {
    auto it = producer.find(t);
    return it != producer.end() && it->second->op_type == "DequantizeLinear";
  };
  const auto macs = node_macs(qdq_model, options);
  MacCount c;
  for (const auto& n : qdq_model.graph.nodes) {
    if (!is_mac_node(n) || n.outputs.empty()) continue;
    NodeMacs m{n.name, n.op_type, macs.count(n.name) ? macs.at(n.name) : 0,
               n.inputs.size() >= 2 && dequantized(n.inputs[0]) && dequantized(n.inputs[1])};
    c.total += m.macs;
    if (m.int8) c.int8 += m.macs;
    c.nodes.push_back(std::move(m));
  }
  return c;
}

}  // namespace detrq::quant
