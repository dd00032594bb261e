// Graph passes over the IR that need no kernels: Constant nodes to initializers, topological order
// (with cycle and dangling-input errors) and dead-node removal.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "detrq/onnx/model.h"

namespace detrq::onnx {

// Replaces every Constant node by an initializer holding its value (value, value_float(s),
// value_int(s)); refuses string and sparse constants.
void constants_to_initializers(Graph& graph);

// Node indices in an order where every node comes after the producers of its inputs. Throws
// kInvalidInput naming the node and tensor when an input is produced by nothing (a dangling input),
// when two nodes produce the same tensor, or when nodes form a cycle (naming them).
std::vector<std::size_t> topological_order(const Graph& graph);

// Checks the graph (as topological_order does), then removes nodes whose outputs do not reach a graph
// output and the initializers nothing uses (through GraphEditor, graph_editor.h).
// Returns the number of nodes removed. Node order is kept.
std::size_t remove_dead_nodes(Graph& graph);

}  // namespace detrq::onnx
