// The one graph layer that passes rewrite the graph through: an index of every tensor's producer,
// consumers and constant value that stays correct after each edit, with node replacement, removal,
// tensor renaming and dead-node removal in one place.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "detrq/onnx/model.h"

namespace detrq::onnx {

// Index of a node in the edited graph. Stable while the editor lives: a replaced node keeps its id
// (and its place in node order), a removed one leaves a hole until commit().
using NodeId = std::size_t;

class GraphEditor {
 public:
  // Indexes `graph`, which must outlive the editor. Edits go to graph.nodes at once, except that
  // removed nodes stay in the vector (as holes the queries skip) until commit() or the destructor.
  explicit GraphEditor(Graph& graph);
  // The index alone, over a graph the caller does not edit through it (queries only: the object is
  // const). It reflects the graph as it was when made, except initializers, which it reads live.
  static const GraphEditor index_of(const Graph& graph) { return GraphEditor(const_cast<Graph&>(graph)); }
  ~GraphEditor();
  GraphEditor(const GraphEditor&) = delete;
  GraphEditor& operator=(const GraphEditor&) = delete;

  const Graph& graph() const { return graph_; }

  // ---- Queries (removed nodes never appear) ----
  std::size_t slot_count() const { return graph_.nodes.size(); }  // ids run over [0, slot_count())
  bool alive(NodeId id) const { return id < removed_.size() && !removed_[id]; }
  const Node& node(NodeId id) const { return graph_.nodes[id]; }
  std::size_t live_count() const { return graph_.nodes.size() - holes_; }
  // The node producing `tensor`; nullopt for graph inputs, initializers and unknown names.
  std::optional<NodeId> producer(const std::string& tensor) const;
  // The nodes reading `tensor`, once per input slot (a node reading it twice is listed twice), in no
  // particular order.
  const std::vector<NodeId>& consumers(const std::string& tensor) const;
  bool is_graph_output(const std::string& tensor) const { return graph_outputs_.count(tensor) != 0; }
  // A tensor a rewrite may make disappear: read by exactly `readers` input slots, not a graph output,
  // not in `keep` (tensors an observer must see).
  bool internal(const std::string& tensor, std::size_t readers, const std::set<std::string>& keep) const;
  // The initializer named `tensor`, or nullptr.
  const Tensor* initializer(const std::string& tensor) const;
  // The initializer behind `tensor`, directly or through a chain of default-domain Identity nodes
  // (exporters share weights that way); nullptr when it is computed.
  const Tensor* constant(const std::string& tensor) const;
  // The initializer's name behind `tensor` as constant() follows it, or "" when there is none.
  std::string constant_name(const std::string& tensor) const;

  // ---- Edits (the index follows each one) ----
  // Puts `replacement` in place of node `id` (same id, same place in node order).
  void replace(NodeId id, Node replacement);
  void remove(NodeId id);
  // Adds a node after every existing one; returns its id.
  NodeId append(Node node);
  // Sets input `slot` of node `id` to `tensor`.
  void set_input(NodeId id, std::size_t slot, const std::string& tensor);
  // Every input slot that reads `from` reads `to` instead (graph outputs are left alone).
  void redirect_consumers(const std::string& from, const std::string& to);
  // Renames a tensor everywhere: its producer's output (or the initializer or graph input), its
  // readers, the graph output and value_info of that name. `to` must be a name not in use.
  void rename(const std::string& from, const std::string& to);
  void set_initializer(const std::string& name, Tensor value);
  void erase_initializer(const std::string& name);
  // Removes every node whose outputs reach no graph output, then the initializers nothing reads.
  // Returns the number of nodes removed.
  std::size_t remove_dead_nodes();

  // Drops the holes from graph.nodes, keeping the order of the rest. Ids are renumbered: the editor
  // re-indexes, so it stays usable.
  void commit();
  // Throws kInternal naming `where` when the index disagrees with the graph (a test and debug aid).
  void check_index(const std::string& where) const;
 private:
  void index_node(NodeId id);
  void unindex_node(NodeId id);
  void reindex();

  Graph& graph_;
  std::vector<bool> removed_;
  std::size_t holes_ = 0;
  std::unordered_map<std::string, NodeId> producers_;
  std::unordered_map<std::string, std::vector<NodeId>> consumers_;
  std::set<std::string> graph_outputs_;
};

// Throws kInternalError naming `where` (a pass, say) when the graph is broken: a tensor with two
// producers, an input nothing produces, a cycle, or a graph output nothing produces.
void validate_graph(const Graph& graph, const std::string& where);

}  // namespace detrq::onnx
