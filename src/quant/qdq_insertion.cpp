// Q/DQ insertion: per-tensor activations, per-channel int8 weights, topological order preserved.
#include "detrq/quant/qdq_insertion.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_editor.h"

namespace detrq::quant {
namespace {

// Whether `name` is a constant: an initializer, directly or through Identity nodes (exports share
// weights between layers that way), or a Constant node's output (used as-is: it has no initializer).
bool is_constant(const onnx::GraphEditor& index, const std::string& name) {
  if (!index.constant_name(name).empty()) return true;
  const auto p = index.producer(name);
  return p && index.node(*p).op_type == "Constant";
}

onnx::Node make_node(std::string op, std::string name, std::vector<std::string> inputs, std::string output) {
  onnx::Node n;
  n.op_type = std::move(op);
  n.name = std::move(name);
  n.inputs = std::move(inputs);
  n.outputs = {std::move(output)};
  return n;
}

onnx::Attribute int_attr(int64_t v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInt;
  a.i = v;
  return a;
}

}  // namespace

int weight_channel_axis(const onnx::Node& node, int input_index, const core::Shape& weight_shape) {
  const int rank = static_cast<int>(weight_shape.size());
  if (node.op_type == "Conv") return 0;
  if (node.op_type == "Gemm") {
    auto it = node.attributes.find("transB");
    const bool trans_b = it != node.attributes.end() && it->second.i != 0;
    if (input_index == 0) {
      auto ta = node.attributes.find("transA");
      return ta != node.attributes.end() && ta->second.i != 0 ? 1 : 0;
    }
    return trans_b ? 0 : 1;
  }
  // MatMul: B [.., K, N] has its outputs along the last axis; A [M, K] along rows.
  if (input_index == 0) return std::max(0, rank - 2);
  return std::max(0, rank - 1);
}

core::Tensor quantize_weight_per_channel(const core::Tensor& weight, int axis, std::vector<float>& scales) {
  const core::Shape& shape = weight.shape();
  const int rank = static_cast<int>(shape.size());
  int64_t outer = 1, channels = 1, inner = 1;
  if (rank > 0) {
    DETRQ_ASSERT(axis >= 0 && axis < rank, "weight axis out of range");
    channels = shape[static_cast<std::size_t>(axis)];
    for (int d = 0; d < axis; ++d) outer *= shape[static_cast<std::size_t>(d)];
    for (int d = axis + 1; d < rank; ++d) inner *= shape[static_cast<std::size_t>(d)];
  }
  const float* w = weight.data<float>();
  std::vector<float> amax(static_cast<std::size_t>(channels), 0.0F);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const float* row = w + (o * channels + c) * inner;
      float m = amax[static_cast<std::size_t>(c)];
      for (int64_t i = 0; i < inner; ++i) {
        if (std::isfinite(row[i])) m = std::max(m, std::fabs(row[i]));
      }
      amax[static_cast<std::size_t>(c)] = m;
    }
  }
  scales.resize(static_cast<std::size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const float s = amax[static_cast<std::size_t>(c)] / 127.0F;
    scales[static_cast<std::size_t>(c)] = s > 0 && std::isfinite(s) ? s : 1.0F;
  }
  core::Tensor q = core::Tensor::empty(core::DType::kInt8, shape);
  int8_t* out = q.data<int8_t>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const float s = scales[static_cast<std::size_t>(c)];
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        float v = std::rint(w[base + i] / s);
        v = std::clamp(v == v ? v : 0.0F, -127.0F, 127.0F);
        out[base + i] = static_cast<int8_t>(v);
      }
    }
  }
  return q;
}

namespace {
bool is_candidate(const onnx::Node& node) {
  return (node.op_type == "Conv" || node.op_type == "MatMul" || node.op_type == "Gemm") &&
         (node.domain.empty() || node.domain == "ai.onnx");
}

bool is_ranking(const onnx::Node& n) {
  return (n.op_type == "TopK" || n.op_type == "ArgMax" || n.op_type == "ArgMin") && !n.inputs.empty();
}

// The nodes reached walking back from `starts` through producers; a ranking node's scores input is
// not followed when `skip_scores`.
std::set<const onnx::Node*> upstream(const std::map<std::string, const onnx::Node*>& producer,
                                     std::vector<std::string> stack, bool skip_scores) {
  std::set<const onnx::Node*> seen;
  while (!stack.empty()) {
    std::string t = stack.back();
    stack.pop_back();
    auto it = producer.find(t);
    if (it == producer.end() || !seen.insert(it->second).second) continue;
    const onnx::Node& n = *it->second;
    for (std::size_t i = skip_scores && is_ranking(n) ? 1 : 0; i < n.inputs.size(); ++i) stack.push_back(n.inputs[i]);
  }
  return seen;
}

// Nodes whose results reach the graph outputs only through the scores of a ranking operator (TopK,
// ArgMax, ArgMin): in RF-DETR the encoder's proposal class head, which only orders proposals.
std::set<const onnx::Node*> only_ranking(const onnx::Graph& g) {
  std::map<std::string, const onnx::Node*> producer;
  for (const auto& n : g.nodes) {
    for (const auto& o : n.outputs) producer[o] = &n;
  }
  std::vector<std::string> scores, outputs;
  for (const auto& n : g.nodes) {
    if (is_ranking(n)) scores.push_back(n.inputs[0]);
  }
  for (const auto& o : g.outputs) outputs.push_back(o.name);
  const auto ranked = upstream(producer, scores, false);
  const auto used = upstream(producer, outputs, true);
  std::set<const onnx::Node*> out;
  for (const onnx::Node* n : ranked) {
    if (!used.count(n)) out.insert(n);
  }
  return out;
}

// Residual Adds after the layers whose outputs are in `int8_outputs`: (Add node index, index of its skip input).
// The layer's output reaches the Add directly or through one Add with a constant (its bias).
std::vector<std::pair<std::size_t, std::size_t>> residual_adds(const onnx::Graph& g,
                                                              const std::set<std::string>& int8_outputs,
                                                              const onnx::GraphEditor& constants) {
  std::set<std::string> reaching(int8_outputs);
  auto is_add = [](const onnx::Node& n) {
    return n.op_type == "Add" && (n.domain.empty() || n.domain == "ai.onnx") && n.inputs.size() == 2 &&
           n.outputs.size() == 1;
  };
  for (const auto& n : g.nodes) {
    if (!is_add(n)) continue;
    for (std::size_t i = 0; i < 2; ++i) {
      if (int8_outputs.count(n.inputs[i]) && is_constant(constants, n.inputs[1 - i])) reaching.insert(n.outputs[0]);
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    const onnx::Node& n = g.nodes[k];
    if (!is_add(n) || n.inputs[0] == n.inputs[1]) continue;
    for (std::size_t i = 0; i < 2; ++i) {
      const std::string& skip = n.inputs[1 - i];
      if (reaching.count(n.inputs[i]) && !is_constant(constants, skip) && !reaching.count(skip)) {
        out.emplace_back(k, 1 - i);
        break;
      }
    }
  }
  return out;
}

// The policy's decision before calibration: from the node and which of its inputs are constant.
NodeDecision pre_decide(const onnx::Node& node, const onnx::GraphEditor& constants, const std::set<std::string>& graph_inputs,
                        const std::set<const onnx::Node*>& ranking, const PrecisionPolicy& policy) {
  const std::size_t data_inputs = std::min<std::size_t>(node.inputs.size(), 2);
  bool any_constant = false;
  bool reads_graph_input = false;
  for (std::size_t i = 0; i < data_inputs; ++i) {
    any_constant = any_constant || is_constant(constants, node.inputs[i]);
    reads_graph_input = reads_graph_input || graph_inputs.count(node.inputs[i]);
  }
  return policy.decide(node, !any_constant, reads_graph_input, ranking.count(&node) != 0);
}
}  // namespace

std::set<std::string> tensors_to_calibrate(const onnx::Model& model, const PrecisionPolicy& policy) {
  const onnx::Graph& g = model.graph;
  const onnx::GraphEditor constants = onnx::GraphEditor::index_of(g);
  std::set<std::string> graph_inputs, out;
  for (const auto& in : g.inputs) {
    graph_inputs.insert(in.name);
    out.insert(in.name);
  }
  const auto ranking = only_ranking(g);
  std::set<std::string> int8_outputs;
  for (const auto& node : g.nodes) {
    if (!is_candidate(node) || !pre_decide(node, constants, graph_inputs, ranking, policy).quantize) continue;
    for (std::size_t i = 0; i < std::min<std::size_t>(node.inputs.size(), 2); ++i) {
      if (!is_constant(constants, node.inputs[i])) out.insert(node.inputs[i]);
    }
    for (const auto& o : node.outputs) {
      if (!o.empty()) out.insert(o);
      if (!o.empty()) int8_outputs.insert(o);
    }
  }
  if (policy.residual_adds) {
    for (const auto& [add, skip] : residual_adds(g, int8_outputs, constants)) out.insert(g.nodes[add].inputs[skip]);
  }
  return out;
}

QdqSummary insert_qdq(onnx::Model& model, const CalibrationTable& table, const PrecisionPolicy& policy) {
  onnx::Graph& g = model.graph;
  QdqSummary summary;
  const onnx::GraphEditor constants = onnx::GraphEditor::index_of(g);
  std::set<std::string> graph_inputs;
  for (const auto& in : g.inputs) graph_inputs.insert(in.name);

  // Names are made unique against everything already in the graph.
  std::set<std::string> taken;
  for (const auto& n : g.nodes) {
    taken.insert(n.name);
    for (const auto& o : n.outputs) taken.insert(o);
  }
  for (const auto& [name, t] : g.initializers) taken.insert(name);
  for (const auto& in : g.inputs) taken.insert(in.name);
  auto unique = [&](const std::string& base) {
    std::string n = base;
    for (int k = 1; taken.count(n); ++k) n = base + "_" + std::to_string(k);
    taken.insert(n);
    return n;
  };

  std::map<std::string, std::string> activation_dq;  // tensor -> its DequantizeLinear output
  std::map<std::string, std::vector<onnx::Node>> after_producer;  // tensor -> Q/DQ nodes to emit after it
  std::vector<onnx::Node> weight_nodes;  // weight DequantizeLinear nodes, emitted first
  std::map<std::pair<std::string, int>, std::string> weight_dq;  // (initializer, axis) -> DQ output

  auto quantize_activation = [&](const std::string& tensor) -> std::string {
    if (auto it = activation_dq.find(tensor); it != activation_dq.end()) return it->second;
    const TensorCalibration& t = table.tensors.at(tensor);
    const std::string scale = unique(tensor + "_scale");
    const std::string zp = unique(tensor + "_zero_point");
    g.initializers[scale] = core::Tensor::scalar<float>(t.scale);
    g.initializers[zp] = core::Tensor::scalar<int8_t>(0);
    const std::string q_out = unique(tensor + "_quantized");
    const std::string dq_out = unique(tensor + "_dequantized");
    auto& list = after_producer[tensor];
    list.push_back(make_node("QuantizeLinear", unique(tensor + "_QuantizeLinear"), {tensor, scale, zp}, q_out));
    list.push_back(make_node("DequantizeLinear", unique(tensor + "_DequantizeLinear"), {q_out, scale, zp}, dq_out));
    activation_dq[tensor] = dq_out;
    ++summary.quantized_activations;
    return dq_out;
  };

  auto quantize_weight = [&](const onnx::Node& node, int index, const std::string& init) -> std::string {
    const core::Tensor& w = g.initializers.at(init);
    const int axis = weight_channel_axis(node, index, w.shape());
    if (auto it = weight_dq.find({init, axis}); it != weight_dq.end()) return it->second;
    std::vector<float> scales;
    core::Tensor q = quantize_weight_per_channel(w, axis, scales);
    const std::string q_name = unique(init + "_quantized");
    const std::string scale = unique(init + "_scale");
    const std::string zp = unique(init + "_zero_point");
    g.initializers[q_name] = q;
    g.initializers[scale] = core::Tensor::from_vector<float>({static_cast<int64_t>(scales.size())}, scales);
    g.initializers[zp] = core::Tensor::zeros(core::DType::kInt8, {static_cast<int64_t>(scales.size())});
    const std::string dq_out = unique(init + "_dequantized");
    onnx::Node dq = make_node("DequantizeLinear", unique(init + "_DequantizeLinear"), {q_name, scale, zp}, dq_out);
    dq.attributes["axis"] = int_attr(axis);
    weight_nodes.push_back(std::move(dq));
    weight_dq[{init, axis}] = dq_out;
    ++summary.quantized_weights;
    return dq_out;
  };

  const auto ranking = only_ranking(g);
  std::set<std::string> int8_outputs;  // of the nodes quantized below
  for (auto& node : g.nodes) {
    if (!is_candidate(node)) continue;
    // Inputs that carry data: Conv/Gemm x and W (their bias stays float), MatMul A and B.
    const std::size_t data_inputs = std::min<std::size_t>(node.inputs.size(), 2);
    NodeDecision d = pre_decide(node, constants, graph_inputs, ranking, policy);
    // Every data input must be quantizable: a calibrated activation or a float32 initializer.
    if (d.quantize) {
      for (std::size_t i = 0; i < data_inputs && d.quantize; ++i) {
        const std::string& in = node.inputs[i];
        const std::string init = constants.constant_name(in);
        if (!init.empty()) {
          if (g.initializers.at(init).dtype() != core::DType::kFloat32) {
            d.quantize = false;
            d.reason = "weight '" + in + "' is not float32";
          }
        } else if (is_constant(constants, in)) {
          d.quantize = false;
          d.reason = "input '" + in + "' is a Constant node (fold constants first)";
        } else {
          auto it = table.tensors.find(in);
          if (it == table.tensors.end()) {
            d.quantize = false;
            d.reason = "input '" + in + "' has no calibration";
          } else if (!it->second.quantized) {
            d.quantize = false;
            d.reason = "input '" + in + "' is not quantized: " + it->second.reason;
          }
        }
      }
    }
    if (d.quantize) {
      for (std::size_t i = 0; i < data_inputs; ++i) {
        const std::string init = constants.constant_name(node.inputs[i]);
        node.inputs[i] = init.empty() ? quantize_activation(node.inputs[i])
                                      : quantize_weight(node, static_cast<int>(i), init);
      }
      for (const auto& o : node.outputs) {
        if (!o.empty()) int8_outputs.insert(o);
      }
      ++summary.quantized_nodes;
    }
    summary.decisions.push_back(std::move(d));
  }

  if (policy.residual_adds) {
    for (const auto& [add, skip] : residual_adds(g, int8_outputs, constants)) {
      const std::string tensor = g.nodes[add].inputs[skip];
      auto it = table.tensors.find(tensor);
      if (it == table.tensors.end() || !it->second.quantized) continue;  // no scale: the Add stays float
      g.nodes[add].inputs[skip] = quantize_activation(tensor);
      ++summary.quantized_residuals;
    }
  }

  // Rebuild the node list in topological order: weight DQs first, each activation's Q/DQ right
  // after the node that produces it (graph inputs: at the start).
  std::vector<onnx::Node> nodes = std::move(weight_nodes);
  for (const auto& in : g.inputs) {
    if (auto it = after_producer.find(in.name); it != after_producer.end()) {
      for (auto& n : it->second) nodes.push_back(std::move(n));
    }
  }
  for (auto& node : g.nodes) {
    std::vector<std::string> outs = node.outputs;
    nodes.push_back(std::move(node));
    for (const auto& o : outs) {
      if (auto it = after_producer.find(o); it != after_producer.end()) {
        for (auto& n : it->second) nodes.push_back(std::move(n));
      }
    }
  }
  g.nodes = std::move(nodes);

  // Drop what the rewrite made dead: Identity nodes of weights no one reads, then float weights.
  std::set<std::string> outputs;
  for (const auto& o : g.outputs) outputs.insert(o.name);
  for (bool changed = true; changed;) {
    changed = false;
    std::set<std::string> used(outputs);
    for (const auto& n : g.nodes) used.insert(n.inputs.begin(), n.inputs.end());
    auto dead = std::remove_if(g.nodes.begin(), g.nodes.end(), [&](const onnx::Node& n) {
      return (n.op_type == "Identity" || n.op_type == "Constant") && n.outputs.size() == 1 && !used.count(n.outputs[0]);
    });
    if (dead != g.nodes.end()) {
      g.nodes.erase(dead, g.nodes.end());
      changed = true;
    }
  }
  std::set<std::string> used(outputs);
  for (const auto& n : g.nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (auto it = g.initializers.begin(); it != g.initializers.end();) {
    it = used.count(it->first) ? std::next(it) : g.initializers.erase(it);
  }
  auto opset = model.opset_imports.find("");
  if (opset == model.opset_imports.end()) opset = model.opset_imports.find("ai.onnx");
  if (opset == model.opset_imports.end()) {
    model.opset_imports[""] = 13;
  } else if (opset->second < 13) {
    opset->second = 13;
  }
  return summary;
}

}  // namespace detrq::quant
