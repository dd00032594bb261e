// The tensor index of the Q/DQ passes (see qdq_graph_index.h).
#include "runtime/passes/qdq_graph_index.h"

namespace detrq::runtime {

QdqGraphIndex::QdqGraphIndex(const onnx::Graph& graph, const std::set<std::string>& keep) : graph_(graph), keep_(keep) {
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& in : graph.nodes[i].inputs) {
      if (!in.empty()) consumers_[in].push_back(i);
    }
    for (const auto& out : graph.nodes[i].outputs) {
      if (!out.empty()) producers_[out] = i;
    }
  }
  for (const auto& out : graph.outputs) outputs_.insert(out.name);
}

const std::vector<std::size_t>& QdqGraphIndex::consumers(const std::string& name) const {
  static const std::vector<std::size_t> kNone;
  auto it = consumers_.find(name);
  return it == consumers_.end() ? kNone : it->second;
}

bool QdqGraphIndex::internal(const std::string& name, std::size_t readers) const {
  return consumers(name).size() == readers && !outputs_.count(name) && !keep_.count(name);
}

std::optional<std::size_t> QdqGraphIndex::only_reader(const std::string& name, const char* op) const {
  if (!internal(name, 1)) return std::nullopt;
  const std::size_t n = consumers(name)[0];
  const onnx::Node& node = graph_.nodes[n];
  if ((!node.domain.empty() && node.domain != "ai.onnx") || node.op_type != op) return std::nullopt;
  return n;
}

std::optional<std::size_t> QdqGraphIndex::producer(const std::string& name) const {
  auto p = producers_.find(name);
  if (p == producers_.end()) return std::nullopt;
  return p->second;
}

const core::Tensor* QdqGraphIndex::initializer(const std::string& name) const {
  std::string current = name;
  for (int hops = 0; hops < 8; ++hops) {  // through Identity nodes: exporters share weights that way
    auto it = graph_.initializers.find(current);
    if (it != graph_.initializers.end()) return &it->second;
    auto p = producers_.find(current);
    if (p == producers_.end()) return nullptr;
    const onnx::Node& node = graph_.nodes[p->second];
    if ((!node.domain.empty() && node.domain != "ai.onnx") || node.op_type != "Identity" || node.inputs.size() != 1) {
      return nullptr;
    }
    current = node.inputs[0];
  }
  return nullptr;
}

std::optional<float> QdqGraphIndex::scalar(const std::string& name) const {
  const core::Tensor* t = initializer(name);
  if (!t || t->dtype() != core::DType::kFloat32 || t->numel() != 1) return std::nullopt;
  return t->data<float>()[0];
}

bool QdqGraphIndex::vector_of(const std::string& name, int64_t n) const {
  const core::Tensor* t = initializer(name);
  return t && t->dtype() == core::DType::kFloat32 && t->shape() == core::Shape{n};
}

bool QdqGraphIndex::per_tensor_quantize(const onnx::Node& node) const {
  if ((!node.domain.empty() && node.domain != "ai.onnx") || node.op_type != "QuantizeLinear" ||
      node.inputs.size() != 3 || node.outputs.size() != 1 || node.has_attr("block_size") ||
      node.has_attr("output_dtype")) {
    return false;
  }
  const core::Tensor* zp = initializer(node.inputs[2]);
  return scalar(node.inputs[1]).has_value() && zp && zp->numel() == 1 &&
         (zp->dtype() == core::DType::kInt8 || zp->dtype() == core::DType::kUInt8);
}

std::optional<std::string> QdqGraphIndex::other_input(const onnx::Node& node, const std::string& name) {
  if (node.inputs.size() != 2) return std::nullopt;
  if (node.inputs[0] == name && node.inputs[1] != name) return node.inputs[1];
  if (node.inputs[1] == name && node.inputs[0] != name) return node.inputs[0];
  return std::nullopt;
}

void replace_and_remove(onnx::Graph& graph, std::vector<bool> removed,
                        std::vector<std::pair<std::size_t, onnx::Node>> replacements) {
  for (auto& [i, node] : replacements) {
    graph.nodes[i] = std::move(node);
    removed[i] = false;
  }
  std::vector<onnx::Node> kept;
  kept.reserve(graph.nodes.size());
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
}

}  // namespace detrq::runtime
