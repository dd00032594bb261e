// SmoothQuant-style migration from LayerNorm outputs into the weights of the MatMuls they feed.
#include "detrq/quant/smoothing.h"

#include <algorithm>
#include <cmath>

namespace detrq::quant {
namespace {

// The initializer behind a tensor name, through Identity nodes (exports share equal weights, such as
// zero biases, that way); "" when the tensor is computed.
std::string initializer_behind(const onnx::Graph& g, const std::map<std::string, const onnx::Node*>& identity_of,
                               std::string name) {
  for (int depth = 0; depth < 16; ++depth) {
    if (g.initializers.count(name)) return name;
    auto it = identity_of.find(name);
    if (it == identity_of.end() || it->second->inputs.empty()) return {};
    name = it->second->inputs[0];
  }
  return {};
}

std::map<std::string, const onnx::Node*> identities(const onnx::Graph& g) {
  std::map<std::string, const onnx::Node*> out;
  for (const auto& n : g.nodes) {
    if (n.op_type == "Identity" && n.outputs.size() == 1) out[n.outputs[0]] = &n;
  }
  return out;
}

bool is_float_matrix(const onnx::Graph& g, const std::string& name, int64_t rows) {
  auto it = g.initializers.find(name);
  return it != g.initializers.end() && it->second.dtype() == core::DType::kFloat32 && it->second.rank() == 2 &&
         it->second.dim(0) == rows;
}

bool is_float_vector(const onnx::Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  return it != g.initializers.end() && it->second.dtype() == core::DType::kFloat32 && it->second.rank() == 1;
}

std::map<std::string, int> use_counts(const onnx::Graph& g) {
  std::map<std::string, int> uses;
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) ++uses[in];
  }
  for (const auto& o : g.outputs) ++uses[o.name];
  return uses;
}

// The initializer behind `node.inputs[index]` as storage only this node reads, safe to write: copied
// under a new name read directly when other nodes read it or it comes through an Identity, and
// deep-copied always (copies of a Model share tensor storage).
core::Tensor& private_initializer(onnx::Graph& g, std::map<std::string, int>& uses,
                                  const std::map<std::string, const onnx::Node*>& identity_of, onnx::Node& node,
                                  std::size_t index) {
  std::string& name = node.inputs[index];
  const std::string source = initializer_behind(g, identity_of, name);
  const core::Tensor src = g.initializers.at(source);
  if (source != name) {
    // Read through an Identity: this node gets its own initializer and stops reading the Identity.
    --uses[name];
    name = source;
    ++uses[name];
  }
  if (uses[name] > 1) {
    --uses[name];
    std::string copy = name + "_smoothed";
    for (int k = 1; g.initializers.count(copy); ++k) copy = name + "_smoothed_" + std::to_string(k);
    uses[copy] = 1;
    name = copy;
  }
  g.initializers[name] = src.clone();
  return g.initializers.at(name);
}

}  // namespace

std::vector<SmoothingSite> find_smoothing_sites(const onnx::Model& model) {
  const onnx::Graph& g = model.graph;
  std::map<std::string, std::vector<const onnx::Node*>> consumers;
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) consumers[in].push_back(&n);
  }
  std::set<std::string> graph_outputs;
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
  const auto identity_of = identities(g);
  auto behind = [&](const std::string& name) { return initializer_behind(g, identity_of, name); };
  std::vector<SmoothingSite> sites;
  for (const auto& n : g.nodes) {
    if (n.op_type != "LayerNormalization" || n.inputs.size() < 3 || n.outputs.empty()) continue;
    const std::string gamma = behind(n.inputs[1]), beta = behind(n.inputs[2]);
    if (n.attr_int("axis", -1) != -1 || !is_float_vector(g, gamma) || !is_float_vector(g, beta)) continue;
    const int64_t channels = g.initializers.at(gamma).dim(0);
    if (g.initializers.at(beta).dim(0) != channels) continue;
    const std::string& y = n.outputs[0];
    auto it = consumers.find(y);
    if (it == consumers.end() || graph_outputs.count(y)) continue;
    SmoothingSite site{n.name, y, {}};
    bool ok = true;
    for (const onnx::Node* c : it->second) {
      ok = ok && c->op_type == "MatMul" && c->inputs.size() == 2 && c->inputs[0] == y && c->inputs[1] != y &&
           is_float_matrix(g, behind(c->inputs[1]), channels);
      if (ok) site.matmuls.push_back(c->name);
    }
    if (ok) sites.push_back(std::move(site));
  }
  return sites;
}

void ChannelMaxObserver::on_tensor(const std::string& name, const core::Tensor& value) {
  if (!names_.count(name) || value.dtype() != core::DType::kFloat32 || value.rank() == 0) return;
  const int64_t channels = value.dim(value.rank() - 1);
  auto& m = maxima_[name];
  if (m.empty()) m.assign(static_cast<std::size_t>(channels), 0.0F);
  if (static_cast<int64_t>(m.size()) != channels) return;
  const auto data = value.span<float>();
  for (std::size_t i = 0; i < data.size(); ++i) {
    const float v = std::fabs(data[i]);
    float& slot = m[i % m.size()];
    if (std::isfinite(v) && v > slot) slot = v;
  }
}

std::vector<SmoothedSite> apply_smoothing(onnx::Model& model, const std::vector<SmoothingSite>& sites,
                                          const std::map<std::string, std::vector<float>>& channel_max,
                                          double alpha) {
  onnx::Graph& g = model.graph;
  std::map<std::string, onnx::Node*> by_name;
  for (auto& n : g.nodes) by_name[n.name] = &n;
  auto uses = use_counts(g);
  const auto identity_of = identities(g);
  std::vector<SmoothedSite> out;
  for (const auto& site : sites) {
    auto mx = channel_max.find(site.activation);
    if (mx == channel_max.end()) continue;
    const std::vector<float>& amax_x = mx->second;
    const std::size_t channels = amax_x.size();
    onnx::Node& ln = *by_name.at(site.layernorm);
    if (static_cast<std::size_t>(g.initializers.at(initializer_behind(g, identity_of, ln.inputs[1])).dim(0)) != channels) continue;
    std::vector<onnx::Node*> matmuls;
    for (const auto& m : site.matmuls) matmuls.push_back(by_name.at(m));
    // The weight's range per input channel (row), over every MatMul the activation feeds.
    std::vector<float> amax_w(channels, 0.0F);
    for (const onnx::Node* m : matmuls) {
      const core::Tensor& w = g.initializers.at(initializer_behind(g, identity_of, m->inputs[1]));
      const int64_t cols = w.dim(1);
      const float* p = w.data<float>();
      for (std::size_t j = 0; j < channels; ++j) {
        for (int64_t c = 0; c < cols; ++c) amax_w[j] = std::max(amax_w[j], std::fabs(p[j * cols + c]));
      }
    }
    std::vector<float> s(channels, 1.0F);
    SmoothedSite done{site.layernorm, 1.0, 1.0};
    for (std::size_t j = 0; j < channels; ++j) {
      if (!(amax_x[j] > 0) || !(amax_w[j] > 0)) continue;
      const double raw = std::pow(amax_x[j], alpha) / std::pow(amax_w[j], 1.0 - alpha);
      const int exponent = std::clamp(static_cast<int>(std::lround(std::log2(raw))), -20, 20);
      s[j] = std::ldexp(1.0F, exponent);
      done.max_factor = std::max(done.max_factor, static_cast<double>(s[j]));
      done.min_factor = std::min(done.min_factor, static_cast<double>(s[j]));
    }
    for (std::size_t index : {std::size_t{1}, std::size_t{2}}) {
      float* p = private_initializer(g, uses, identity_of, ln, index).data<float>();
      for (std::size_t j = 0; j < channels; ++j) p[j] /= s[j];
    }
    for (onnx::Node* m : matmuls) {
      core::Tensor& w = private_initializer(g, uses, identity_of, *m, 1);
      const int64_t cols = w.dim(1);
      float* p = w.data<float>();
      for (std::size_t j = 0; j < channels; ++j) {
        for (int64_t c = 0; c < cols; ++c) p[j * cols + c] *= s[j];
      }
    }
    out.push_back(done);
  }
  return out;
}

}  // namespace detrq::quant
