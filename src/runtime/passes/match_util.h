// Small pattern-matching questions the fusion passes ask of the graph layer.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "detrq/onnx/graph_editor.h"

namespace detrq::runtime::passes {

// The single node reading `tensor`, when the tensor may disappear (one reader, no graph output, not
// kept) and that reader is a default-domain `op`.
inline std::optional<onnx::NodeId> only_reader(const onnx::GraphEditor& g, const std::string& tensor, const char* op,
                                               const std::set<std::string>& keep) {
  if (!g.internal(tensor, 1, keep)) return std::nullopt;
  const onnx::NodeId n = g.consumers(tensor)[0];
  const onnx::Node& node = g.node(n);
  if (!node.domain.empty() || node.op_type != op) return std::nullopt;
  return n;
}

// The value of a float32 constant of one element (any shape), through Identity chains.
inline std::optional<float> scalar_constant(const onnx::GraphEditor& g, const std::string& tensor) {
  const core::Tensor* t = g.constant(tensor);
  if (!t || t->dtype() != core::DType::kFloat32 || t->numel() != 1) return std::nullopt;
  return t->data<float>()[0];
}

// The input of binary `node` that is not `tensor` (nullopt unless exactly one input is `tensor`).
inline std::optional<std::string> other_input(const onnx::Node& node, const std::string& tensor) {
  if (node.inputs.size() != 2) return std::nullopt;
  if (node.inputs[0] == tensor && node.inputs[1] != tensor) return node.inputs[1];
  if (node.inputs[1] == tensor && node.inputs[0] != tensor) return node.inputs[0];
  return std::nullopt;
}

// x -> Div(x, sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5), the erf GELU as transformer MLPs
// spell it: the nodes (Div first, the last Mul last) when `x` feeds exactly this pattern and every
// tensor in it may disappear.
std::optional<std::vector<onnx::NodeId>> match_erf_gelu(const onnx::GraphEditor& g, const std::string& x,
                                                        const std::set<std::string>& keep);

// A float32 constant of shape [n] (through Identity chains).
bool float_vector_constant(const onnx::GraphEditor& g, const std::string& tensor, int64_t n);

// A default-domain QuantizeLinear with one float32 scale and one int8/uint8 zero point, both constants
// (what a requantizing epilogue can absorb).
bool per_tensor_quantize(const onnx::GraphEditor& g, const onnx::Node& node);

inline onnx::Attribute string_attribute(std::string value) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kString;
  a.s = std::move(value);
  return a;
}

inline onnx::Attribute ints_attribute(std::vector<int64_t> value) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInts;
  a.ints = std::move(value);
  return a;
}

}  // namespace detrq::runtime::passes
