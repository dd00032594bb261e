// Weight pre-quantization (see prequantize.h).
#include "detrq/engine/cpu/prequantize.h"

#include <cfenv>
#include <cmath>
#include <limits>
#include <set>

namespace detrq::engine::cpu {

namespace {

const core::Tensor* constant(const onnx::Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  return it == g.initializers.end() ? nullptr : &it->second;
}

template <typename Q>
core::Tensor quantize(const core::Tensor& x, const core::Tensor& scale, const core::Tensor* zero_point, int64_t axis) {
  core::Tensor out = core::Tensor::empty(core::DTypeOf<Q>::value, x.shape());
  const float* xs = x.data<float>();
  const float* ss = scale.data<float>();
  const Q* zs = zero_point ? zero_point->data<Q>() : nullptr;
  Q* ys = out.data<Q>();
  // Per-axis: the channel of element i is (i / inner) % channels.
  int64_t inner = 1;
  const int64_t channels = scale.numel();
  if (channels > 1) {
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(static_cast<int>(d));
  }
  const int64_t n = x.numel();
  constexpr float lo = static_cast<float>(std::numeric_limits<Q>::min());
  constexpr float hi = static_cast<float>(std::numeric_limits<Q>::max());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = channels > 1 ? (i / inner) % channels : 0;
    // Float division then rounding to nearest even, as the ONNX reference (numpy.rint) and onnxruntime do.
    float v = std::nearbyint(xs[i] / ss[c]) + (zs ? static_cast<float>(zs[c]) : 0.0F);
    v = std::fmin(std::fmax(v, lo), hi);
    ys[i] = static_cast<Q>(v);
  }
  return out;
}

}  // namespace

PrequantizeSummary prequantize_weights(onnx::Model& model) {
  PrequantizeSummary summary;
  onnx::Graph& g = model.graph;
  const int saved_round = std::fegetround();
  std::fesetround(FE_TONEAREST);
  std::vector<onnx::Node> kept;
  std::set<std::string> maybe_dead;
  for (auto& node : g.nodes) {
    const bool candidate = node.op_type == "QuantizeLinear" && (node.domain.empty() || node.domain == "ai.onnx") &&
                           node.inputs.size() >= 2 && node.outputs.size() == 1 && !node.outputs[0].empty();
    const core::Tensor* x = candidate ? constant(g, node.inputs[0]) : nullptr;
    const core::Tensor* s = candidate ? constant(g, node.inputs[1]) : nullptr;
    const core::Tensor* z = candidate && node.inputs.size() > 2 && !node.inputs[2].empty() ? constant(g, node.inputs[2]) : nullptr;
    const bool zp_missing = candidate && node.inputs.size() > 2 && !node.inputs[2].empty() && z == nullptr;
    bool ok = x && s && !zp_missing && x->dtype() == core::DType::kFloat32 && s->dtype() == core::DType::kFloat32 &&
              s->rank() <= 1 && (!z || ((z->dtype() == core::DType::kInt8 || z->dtype() == core::DType::kUInt8) &&
                                        z->numel() == s->numel())) &&
              !node.has_attr("block_size") && !(node.has_attr("output_dtype") && node.attributes.at("output_dtype").i != 0);
    int64_t axis = node.has_attr("axis") ? node.attributes.at("axis").i : 1;
    if (ok && s->numel() > 1) {
      if (axis < 0) axis += x->rank();
      ok = axis >= 0 && axis < x->rank() && x->dim(static_cast<int>(axis)) == s->numel();
    }
    if (!ok) {
      kept.push_back(std::move(node));
      continue;
    }
    core::Tensor q = (z && z->dtype() == core::DType::kInt8) ? quantize<int8_t>(*x, *s, z, axis)
                                                              : quantize<uint8_t>(*x, *s, z, axis);
    summary.folded += 1;
    summary.bytes_after += q.nbytes();
    maybe_dead.insert(node.inputs[0]);
    g.initializers[node.outputs[0]] = std::move(q);
  }
  g.nodes = std::move(kept);
  std::fesetround(saved_round);

  // Drop the float weights that nothing reads any more.
  std::set<std::string> used;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs) used.insert(in);
  for (const auto& o : g.outputs) used.insert(o.name);
  for (const auto& name : maybe_dead) {
    if (used.count(name)) continue;
    auto it = g.initializers.find(name);
    if (it == g.initializers.end()) continue;
    summary.bytes_before += it->second.nbytes();
    g.initializers.erase(it);
  }
  return summary;
}

}  // namespace detrq::engine::cpu
