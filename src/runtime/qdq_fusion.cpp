// Q/DQ fusion (see qdq_fusion.h).
#include "runtime/qdq_fusion.h"

#include <cmath>
#include <unordered_map>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/onnx/graph_passes.h"
#include "detrq/runtime/quantize.h"

namespace detrq::runtime {
namespace {

bool default_domain(const onnx::Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

const core::Tensor* initializer(const onnx::Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  return it == g.initializers.end() ? nullptr : &it->second;
}

// A DequantizeLinear node (default domain, no blocks) with scale and optional zero point initializers.
bool plain_dequantize(const onnx::Graph& g, const onnx::Node& n) {
  if (!default_domain(n) || n.op_type != "DequantizeLinear" || n.inputs.size() < 2 || n.outputs.size() != 1) {
    return false;
  }
  if (auto it = n.attributes.find("block_size"); it != n.attributes.end() && it->second.i != 0) return false;
  const core::Tensor* scale = initializer(g, n.inputs[1]);
  if (!scale || scale->dtype() != core::DType::kFloat32 || scale->rank() > 1 || scale->numel() < 1) return false;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const core::Tensor* zp = initializer(g, n.inputs[2]);
    if (!zp || zp->numel() != scale->numel() || zp->shape() != scale->shape()) return false;
    if (zp->dtype() != core::DType::kInt8 && zp->dtype() != core::DType::kUInt8) return false;
  }
  return true;
}

// A DequantizeLinear whose zero point is absent or int8 zeros (what the int8 GEMM's weights assume).
bool zero_weight_zero_point(const onnx::Graph& g, const onnx::Node& n) {
  if (n.inputs.size() <= 2 || n.inputs[2].empty()) return true;
  const core::Tensor* zp = initializer(g, n.inputs[2]);
  if (zp->dtype() != core::DType::kInt8) return false;
  for (int64_t i = 0; i < zp->numel(); ++i) {
    if (zp->data<int8_t>()[i] != 0) return false;
  }
  return true;
}

// The activation side: any non-constant q_x with one scale and one zero point.
bool activation_dequantize(const onnx::Graph& g, const onnx::Node& n) {
  return plain_dequantize(g, n) && !initializer(g, n.inputs[0]) && initializer(g, n.inputs[1])->numel() == 1;
}

// The weight side: int8 [K, N], scale per tensor or per column, zero point absent or all 0.
bool weight_dequantize(const onnx::Graph& g, const onnx::Node& n) {
  if (!plain_dequantize(g, n)) return false;
  const core::Tensor* w = initializer(g, n.inputs[0]);
  if (!w || w->dtype() != core::DType::kInt8 || w->rank() != 2) return false;
  const core::Tensor* scale = initializer(g, n.inputs[1]);
  if (scale->numel() > 1) {
    const int64_t axis = n.attr_int("axis", 1);
    if ((axis != 1 && axis != -1) || scale->numel() != w->dim(1)) return false;
  }
  return zero_weight_zero_point(g, n);
}

// A 2-D Conv weight: int8 [O, C, kh, kw], scale per tensor or per output channel (axis 0), zero point 0.
bool conv_weight_dequantize(const onnx::Graph& g, const onnx::Node& n) {
  if (!plain_dequantize(g, n)) return false;
  const core::Tensor* w = initializer(g, n.inputs[0]);
  if (!w || w->dtype() != core::DType::kInt8 || w->rank() != 4) return false;
  const core::Tensor* scale = initializer(g, n.inputs[1]);
  if (scale->numel() > 1 && (n.attr_int("axis", 1) != 0 || scale->numel() != w->dim(0))) return false;
  return zero_weight_zero_point(g, n);
}

// Conv attributes QConvF runs: one group, explicit (or no) pads, a kernel shape matching the weight.
bool plain_conv(const onnx::Graph& g, const onnx::Node& conv, const core::Tensor& w) {
  if (conv.attr_int("group", 1) != 1) return false;
  const std::string auto_pad = conv.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET") return false;
  const auto kernel = conv.attr_ints("kernel_shape", {w.dim(2), w.dim(3)});
  if (kernel != std::vector<int64_t>{w.dim(2), w.dim(3)}) return false;
  if (conv.attr_ints("strides", {1, 1}).size() != 2 || conv.attr_ints("dilations", {1, 1}).size() != 2 ||
      conv.attr_ints("pads", {0, 0, 0, 0}).size() != 4) {
    return false;
  }
  if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
    const core::Tensor* bias = initializer(g, conv.inputs[2]);
    if (!bias || bias->dtype() != core::DType::kFloat32 || bias->numel() != w.dim(0)) return false;
  }
  return true;
}

// Weights given as QuantizeLinear(float initializer) -> DequantizeLinear: the codes computed now, as
// the QuantizeLinear kernel would (quantize_constant), and stored as an int8
// initializer under the QuantizeLinear's output name, so the patterns above see constant int8 weights.
// The CPU engine pre-quantizes the same way at build time, so an engine and its ONNX run alike.
std::size_t fold_weight_quantization(onnx::Graph& g, const std::set<std::string>& keep) {
  std::set<std::string> outputs;
  for (const auto& o : g.outputs) outputs.insert(o.name);
  std::set<std::string> read_by_others;  // tensors some node other than a DequantizeLinear reads
  for (const auto& n : g.nodes) {
    if (n.op_type != "DequantizeLinear") read_by_others.insert(n.inputs.begin(), n.inputs.end());
  }
  std::size_t folded = 0;
  std::vector<onnx::Node> kept;
  for (auto& n : g.nodes) {
    const core::Tensor* x = nullptr;
    const core::Tensor* scale = nullptr;
    const core::Tensor* zp = nullptr;
    bool ok = default_domain(n) && n.op_type == "QuantizeLinear" && n.inputs.size() == 3 && n.outputs.size() == 1 &&
              !n.has_attr("block_size") && !n.has_attr("output_dtype") && !outputs.count(n.outputs[0]) &&
              !keep.count(n.outputs[0]) && !read_by_others.count(n.outputs[0]);
    if (ok) {
      x = initializer(g, n.inputs[0]);
      scale = initializer(g, n.inputs[1]);
      zp = initializer(g, n.inputs[2]);
      ok = x && scale && zp && x->dtype() == core::DType::kFloat32 && scale->dtype() == core::DType::kFloat32 &&
           zp->dtype() == core::DType::kInt8 && scale->rank() <= 1 && zp->numel() == scale->numel() && x->rank() >= 1;
    }
    int64_t axis = n.attr_int("axis", 1);
    if (ok && scale->numel() > 1) {
      if (axis < 0) axis += x->rank();
      ok = axis >= 0 && axis < x->rank() && x->dim(static_cast<int>(axis)) == scale->numel();
    }
    if (!ok) {
      kept.push_back(std::move(n));
      continue;
    }
    core::Tensor codes = quantize_constant(*x, *scale, zp, axis);
    g.initializers[n.outputs[0]] = std::move(codes);
    ++folded;
  }
  g.nodes = std::move(kept);
  return folded;
}

}  // namespace

QdqFusionSummary fuse_qdq(onnx::Model& model, bool fuse, const std::set<std::string>& keep) {
  onnx::Graph& g = model.graph;
  for (const auto& n : g.nodes) {
    if (n.domain == kInternalDomain && !model.metadata.count(kInternalPlanKey)) {
      // (One literal: g++ 12 warns falsely on string + const char* here.)
      throw_unsupported(n.describe(), "uses detrq's internal operator domain com.detrq",
                        "only plans that detrq writes (CPU engine files) may contain it");
    }
  }
  // Every plan the Session makes may hold internal nodes (this fusion's or fusion.h's), and an engine
  // file stores the plan: mark it so that it loads again.
  model.metadata[kInternalPlanKey] = std::string(1, '1');  // (g++ 12 warns falsely on assigning "1")
  QdqFusionSummary summary;
  if (!fuse) return summary;
  if (fold_weight_quantization(g, keep) > 0) onnx::remove_dead_nodes(g);  // the float weights
  std::unordered_map<std::string, std::size_t> producer;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& out : g.nodes[i].outputs) {
      if (!out.empty()) producer[out] = i;
    }
  }
  auto produced_by = [&](const std::string& name) -> const onnx::Node* {
    auto it = producer.find(name);
    return it == producer.end() ? nullptr : &g.nodes[it->second];
  };
  for (auto& node : g.nodes) {
    if (default_domain(node) && node.op_type == "Conv" && node.inputs.size() >= 2 && node.inputs.size() <= 3 &&
        node.outputs.size() == 1) {
      const onnx::Node* a = produced_by(node.inputs[0]);
      const onnx::Node* b = produced_by(node.inputs[1]);
      if (!a || !b || keep.count(node.inputs[0]) || keep.count(node.inputs[1]) || !activation_dequantize(g, *a) ||
          !conv_weight_dequantize(g, *b) || !plain_conv(g, node, *initializer(g, b->inputs[0]))) {
        continue;
      }
      onnx::Node fused;
      fused.name = node.name;
      fused.op_type = "QConvF";
      fused.domain = kInternalDomain;
      fused.inputs = {a->inputs[0], a->inputs[1], a->inputs.size() > 2 ? a->inputs[2] : std::string(), b->inputs[0],
                      b->inputs[1]};
      if (node.inputs.size() > 2 && !node.inputs[2].empty()) fused.inputs.push_back(node.inputs[2]);
      for (const char* key : {"strides", "pads", "dilations"}) {
        if (auto it = node.attributes.find(key); it != node.attributes.end()) fused.attributes[key] = it->second;
      }
      fused.outputs = node.outputs;
      node = std::move(fused);
      ++summary.convs;
      continue;
    }
    if (!default_domain(node) || node.op_type != "MatMul" || node.inputs.size() != 2 || node.outputs.size() != 1) {
      continue;
    }
    const onnx::Node* a = produced_by(node.inputs[0]);
    const onnx::Node* b = produced_by(node.inputs[1]);
    if (!a || !b || keep.count(node.inputs[0]) || keep.count(node.inputs[1]) || !activation_dequantize(g, *a) ||
        !weight_dequantize(g, *b)) {
      continue;
    }
    onnx::Node fused;
    fused.name = node.name;
    fused.op_type = "QMatMulF";
    fused.domain = kInternalDomain;
    fused.inputs = {a->inputs[0], a->inputs[1], a->inputs.size() > 2 ? a->inputs[2] : std::string(), b->inputs[0],
                    b->inputs[1]};
    fused.outputs = node.outputs;
    node = std::move(fused);  // `producer` indexes stay valid: the node keeps its place and outputs
    ++summary.matmuls;
  }
  if (summary.matmuls + summary.convs > 0) {
    model.opset_imports[kInternalDomain] = 1;
    onnx::remove_dead_nodes(g);  // the DequantizeLinear nodes nothing else reads
    core::log_debug("qdq fusion: {} MatMul and {} Conv nodes run in int8", summary.matmuls, summary.convs);
  }
  return summary;
}

}  // namespace detrq::runtime
