// The graph layer passes edit through (see graph_editor.h).
#include "detrq/onnx/graph_editor.h"

#include <algorithm>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_passes.h"

namespace detrq::onnx {
namespace {

bool is_identity(const Node& node) {
  return (node.domain.empty() || node.domain == "ai.onnx") && node.op_type == "Identity" && node.inputs.size() == 1;
}

void erase_one(std::vector<NodeId>& ids, NodeId id) {
  auto it = std::find(ids.begin(), ids.end(), id);
  if (it != ids.end()) ids.erase(it);
}

}  // namespace

GraphEditor::GraphEditor(Graph& graph) : graph_(graph) { reindex(); }

GraphEditor::~GraphEditor() { commit(); }

void GraphEditor::reindex() {
  removed_.assign(graph_.nodes.size(), false);
  holes_ = 0;
  producers_.clear();
  consumers_.clear();
  graph_outputs_.clear();
  for (NodeId id = 0; id < graph_.nodes.size(); ++id) index_node(id);
  for (const auto& out : graph_.outputs) graph_outputs_.insert(out.name);
}

void GraphEditor::index_node(NodeId id) {
  const Node& node = graph_.nodes[id];
  for (const auto& in : node.inputs) {
    if (!in.empty()) consumers_[in].push_back(id);
  }
  // A second producer of a name is a broken graph; validate_graph() reports it, the index keeps the first.
  for (const auto& out : node.outputs) {
    if (!out.empty()) producers_.emplace(out, id);
  }
}

void GraphEditor::unindex_node(NodeId id) {
  const Node& node = graph_.nodes[id];
  for (const auto& in : node.inputs) {
    if (in.empty()) continue;
    auto it = consumers_.find(in);
    if (it == consumers_.end()) continue;
    erase_one(it->second, id);
    if (it->second.empty()) consumers_.erase(it);
  }
  for (const auto& out : node.outputs) {
    auto it = producers_.find(out);
    if (!out.empty() && it != producers_.end() && it->second == id) producers_.erase(it);
  }
}

std::optional<NodeId> GraphEditor::producer(const std::string& tensor) const {
  auto it = producers_.find(tensor);
  if (it == producers_.end()) return std::nullopt;
  return it->second;
}

const std::vector<NodeId>& GraphEditor::consumers(const std::string& tensor) const {
  static const std::vector<NodeId> kNone;
  auto it = consumers_.find(tensor);
  return it == consumers_.end() ? kNone : it->second;
}

bool GraphEditor::internal(const std::string& tensor, std::size_t readers, const std::set<std::string>& keep) const {
  return consumers(tensor).size() == readers && !is_graph_output(tensor) && !keep.count(tensor);
}

const Tensor* GraphEditor::initializer(const std::string& tensor) const {
  auto it = graph_.initializers.find(tensor);
  return it == graph_.initializers.end() ? nullptr : &it->second;
}

std::string GraphEditor::constant_name(const std::string& tensor) const {
  std::string current = tensor;
  for (int hops = 0; hops < 16; ++hops) {
    if (graph_.initializers.count(current)) return current;
    const auto p = producer(current);
    if (!p || !is_identity(graph_.nodes[*p])) return {};
    current = graph_.nodes[*p].inputs[0];
  }
  return {};
}

const Tensor* GraphEditor::constant(const std::string& tensor) const {
  const std::string name = constant_name(tensor);
  return name.empty() ? nullptr : initializer(name);
}

void GraphEditor::replace(NodeId id, Node replacement) {
  DETRQ_ASSERT(alive(id), "replacing a removed node");
  unindex_node(id);
  graph_.nodes[id] = std::move(replacement);
  index_node(id);
}

void GraphEditor::remove(NodeId id) {
  DETRQ_ASSERT(alive(id), "removing a removed node");
  unindex_node(id);
  removed_[id] = true;
  ++holes_;
}

NodeId GraphEditor::append(Node node) {
  graph_.nodes.push_back(std::move(node));
  removed_.push_back(false);
  index_node(graph_.nodes.size() - 1);
  return graph_.nodes.size() - 1;
}

void GraphEditor::set_input(NodeId id, std::size_t slot, const std::string& tensor) {
  DETRQ_ASSERT(alive(id) && slot < graph_.nodes[id].inputs.size(), "set_input out of range");
  Node node = graph_.nodes[id];
  node.inputs[slot] = tensor;
  replace(id, std::move(node));
}

void GraphEditor::redirect_consumers(const std::string& from, const std::string& to) {
  const std::vector<NodeId> readers = consumers(from);  // a copy: replace() edits the list
  for (NodeId id : readers) {
    if (!alive(id)) continue;
    Node node = graph_.nodes[id];
    for (auto& in : node.inputs) {
      if (in == from) in = to;
    }
    replace(id, std::move(node));
  }
}

void GraphEditor::rename(const std::string& from, const std::string& to) {
  DETRQ_ASSERT(!producer(to) && !initializer(to) && consumers(to).empty(), "renaming onto '" + to + "', in use");
  if (const auto p = producer(from)) {
    Node node = graph_.nodes[*p];
    std::replace(node.outputs.begin(), node.outputs.end(), from, to);
    replace(*p, std::move(node));
  }
  if (auto it = graph_.initializers.find(from); it != graph_.initializers.end()) {
    Tensor value = std::move(it->second);
    graph_.initializers.erase(it);
    graph_.initializers[to] = std::move(value);
  }
  for (auto& in : graph_.inputs) {
    if (in.name == from) in.name = to;
  }
  for (auto& out : graph_.outputs) {
    if (out.name == from) out.name = to;
  }
  if (graph_outputs_.erase(from)) graph_outputs_.insert(to);
  if (auto it = graph_.value_info.find(from); it != graph_.value_info.end()) {
    ValueInfo info = std::move(it->second);
    graph_.value_info.erase(it);
    info.name = to;
    graph_.value_info[to] = std::move(info);
  }
  redirect_consumers(from, to);
}

void GraphEditor::set_initializer(const std::string& name, Tensor value) {
  graph_.initializers[name] = std::move(value);
}

void GraphEditor::erase_initializer(const std::string& name) { graph_.initializers.erase(name); }

std::size_t GraphEditor::remove_dead_nodes() {
  // From the graph outputs back through producers: every node reached contributes to an output.
  std::set<std::string> needed;
  std::vector<std::string> pending;
  for (const auto& out : graph_.outputs) pending.push_back(out.name);
  std::vector<bool> live(graph_.nodes.size(), false);
  while (!pending.empty()) {
    const std::string name = std::move(pending.back());
    pending.pop_back();
    if (!needed.insert(name).second) continue;
    const auto p = producer(name);
    if (!p || live[*p]) continue;
    live[*p] = true;
    for (const auto& in : graph_.nodes[*p].inputs) {
      if (!in.empty()) pending.push_back(in);
    }
  }
  std::size_t removed = 0;
  for (NodeId id = 0; id < graph_.nodes.size(); ++id) {
    if (alive(id) && !live[id]) {
      remove(id);
      ++removed;
    }
  }
  for (auto it = graph_.initializers.begin(); it != graph_.initializers.end();) {
    it = needed.count(it->first) ? std::next(it) : graph_.initializers.erase(it);
  }
  return removed;
}

void GraphEditor::commit() {
  if (holes_ == 0) return;
  std::vector<Node> kept;
  kept.reserve(graph_.nodes.size() - holes_);
  for (NodeId id = 0; id < graph_.nodes.size(); ++id) {
    if (!removed_[id]) kept.push_back(std::move(graph_.nodes[id]));
  }
  graph_.nodes = std::move(kept);
  reindex();
}

void GraphEditor::check_index(const std::string& where) const {
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kInternal, where, "the graph index is stale: " + what, "a bug in the graph layer");
  };
  std::unordered_map<std::string, std::size_t> reads;
  for (NodeId id = 0; id < graph_.nodes.size(); ++id) {
    if (!alive(id)) continue;
    for (const auto& in : graph_.nodes[id].inputs) {
      if (in.empty()) continue;
      ++reads[in];
      const auto& c = consumers(in);
      if (std::count(c.begin(), c.end(), id) !=
          std::count(graph_.nodes[id].inputs.begin(), graph_.nodes[id].inputs.end(), in)) {
        fail(graph_.nodes[id].describe() + " is not listed as a reader of '" + in + "'");
      }
    }
    for (const auto& out : graph_.nodes[id].outputs) {
      if (!out.empty() && !producer(out)) fail("'" + out + "' has no producer");
    }
  }
  for (const auto& [name, ids] : consumers_) {
    if (ids.size() != reads[name]) fail("'" + name + "' lists " + std::to_string(ids.size()) + " readers");
  }
  for (const auto& [name, id] : producers_) {
    const auto& outs = graph_.nodes[id].outputs;
    if (!alive(id) || std::find(outs.begin(), outs.end(), name) == outs.end()) fail("'" + name + "' has a stale producer");
  }
}

void validate_graph(const Graph& graph, const std::string& where) {
  try {
    (void)topological_order(graph);
  } catch (const Error& e) {
    throw Error(ErrorKind::kInternal, where, std::string("left the graph broken: ") + e.what(), "a bug in that pass");
  }
}

}  // namespace detrq::onnx
