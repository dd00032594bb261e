// Who reads and writes each tensor of a graph, for the Q/DQ passes that follow fuse-qdq-matmul (internal to
// runtime): qdq_epilogue_fusion.cpp and qdq_attention_fusion.cpp.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "detrq/onnx/model.h"

namespace detrq::runtime {

class QdqGraphIndex {
 public:
  QdqGraphIndex(const onnx::Graph& graph, const std::set<std::string>& keep);

  const std::vector<std::size_t>& consumers(const std::string& name) const;
  // A tensor that may disappear: read by exactly `readers` nodes, not a graph output, not kept.
  bool internal(const std::string& name, std::size_t readers) const;
  // The one node reading `name` when that node is default-domain `op` and `name` is internal.
  std::optional<std::size_t> only_reader(const std::string& name, const char* op) const;
  std::optional<std::size_t> producer(const std::string& name) const;
  // The initializer `name` is, directly or through Identity nodes (the Session folds those later, so a
  // kernel reading `name` sees the constant).
  const core::Tensor* initializer(const std::string& name) const;
  // The value of a float32 initializer of one element.
  std::optional<float> scalar(const std::string& name) const;
  // A float32 initializer of shape [n].
  bool vector_of(const std::string& name, int64_t n) const;
  // A QuantizeLinear with one float32 scale and one int8/uint8 zero point, both initializers (what a
  // requantizing epilogue can absorb).
  bool per_tensor_quantize(const onnx::Node& node) const;
  // The input of binary `node` that is not `name` (nullopt unless exactly one input is `name`).
  static std::optional<std::string> other_input(const onnx::Node& node, const std::string& name);

 private:
  const onnx::Graph& graph_;
  const std::set<std::string>& keep_;
  std::map<std::string, std::vector<std::size_t>> consumers_;
  std::map<std::string, std::size_t> producers_;
  std::set<std::string> outputs_;
};

// Replaces graph.nodes[i] by `node` for each replacement and drops the nodes marked removed.
void replace_and_remove(onnx::Graph& graph, std::vector<bool> removed,
                        std::vector<std::pair<std::size_t, onnx::Node>> replacements);

}  // namespace detrq::runtime
