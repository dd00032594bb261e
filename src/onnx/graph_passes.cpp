// Graph passes that need no kernels: constants to initializers, topological sort, dead-node removal.
#include "detrq/onnx/graph_passes.h"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_editor.h"

namespace detrq::onnx {

void constants_to_initializers(Graph& graph) {
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (auto& node : graph.nodes) {
    if (node.op_type != "Constant" || !node.domain.empty()) {
      kept.push_back(std::move(node));
      continue;
    }
    if (node.outputs.size() != 1 || node.outputs[0].empty()) {
      throw_invalid(node.describe(), "a Constant must have exactly one output");
    }
    Tensor value;
    if (const Tensor* t = node.attr_tensor("value")) {
      value = *t;
    } else if (node.has_attr("value_float")) {
      value = Tensor::scalar<float>(node.attr_float("value_float", 0.0F));
    } else if (node.has_attr("value_floats")) {
      const auto v = node.attr_floats("value_floats");
      value = Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
    } else if (node.has_attr("value_int")) {
      value = Tensor::scalar<int64_t>(node.attr_int("value_int", 0));
    } else if (node.has_attr("value_ints")) {
      const auto v = node.attr_ints("value_ints");
      value = Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
    } else {
      throw_unsupported(node.describe(), "has no numeric value (string and sparse constants are not supported)");
    }
    if (graph.initializers.count(node.outputs[0])) {
      throw_invalid(node.describe(), "produces '" + node.outputs[0] + "', which is also an initializer");
    }
    graph.initializers[node.outputs[0]] = std::move(value);
  }
  graph.nodes = std::move(kept);
}

std::vector<std::size_t> topological_order(const Graph& graph) {
  const std::size_t n = graph.nodes.size();
  std::unordered_set<std::string> available;
  for (const auto& in : graph.inputs) available.insert(in.name);
  for (const auto& [name, t] : graph.initializers) available.insert(name);
  std::unordered_map<std::string, std::size_t> producer;
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& out : graph.nodes[i].outputs) {
      if (out.empty()) continue;
      if (available.count(out)) {
        throw_invalid(graph.nodes[i].describe(), "produces '" + out + "', which is already a graph input or initializer",
                      "each tensor must have exactly one producer");
      }
      auto [it, inserted] = producer.emplace(out, i);
      if (!inserted) {
        throw_invalid(graph.nodes[i].describe(),
                      "produces '" + out + "', which " + graph.nodes[it->second].describe() + " also produces",
                      "each tensor must have exactly one producer");
      }
    }
  }
  // Kahn's algorithm, taking ready nodes in file order so the result is stable.
  std::vector<std::size_t> pending(n, 0);
  std::vector<std::vector<std::size_t>> consumers(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::set<std::size_t> deps;
    for (const auto& in : graph.nodes[i].inputs) {
      if (in.empty() || available.count(in)) continue;
      auto it = producer.find(in);
      if (it == producer.end()) {
        throw_invalid(graph.nodes[i].describe(),
                      "input '" + in + "' is not produced by any node, nor a graph input or initializer",
                      "the graph has a dangling input; the model is malformed");
      }
      deps.insert(it->second);
    }
    pending[i] = deps.size();
    for (std::size_t d : deps) consumers[d].push_back(i);
  }
  std::set<std::size_t> ready;
  for (std::size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.insert(i);
  }
  std::vector<std::size_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    const std::size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (std::size_t c : consumers[i]) {
      if (--pending[c] == 0) ready.insert(c);
    }
  }
  if (order.size() != n) {
    std::string names;
    int listed = 0;
    for (std::size_t i = 0; i < n && listed < 8; ++i) {
      if (pending[i] == 0) continue;
      names += (listed++ ? ", " : "") + graph.nodes[i].describe();
    }
    throw_invalid("graph '" + graph.name + "'",
                  "has a cycle: " + std::to_string(n - order.size()) + " nodes wait on each other (" + names + ")",
                  "ONNX graphs must be acyclic; the model is malformed");
  }
  for (const auto& out : graph.outputs) {
    if (!available.count(out.name) && !producer.count(out.name)) {
      throw_invalid("graph output '" + out.name + "'", "is produced by no node and is no input or initializer",
                    "the model is malformed");
    }
  }
  return order;
}

std::size_t remove_dead_nodes(Graph& graph) {
  (void)topological_order(graph);  // refuses cycles, dangling inputs and double producers first
  GraphEditor editor(graph);
  return editor.remove_dead_nodes();
}

}  // namespace detrq::onnx
