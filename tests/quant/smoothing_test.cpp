// SmoothQuant-style migration on a hand-built LayerNorm -> two MatMuls graph with one outlier channel:
// which sites are found, that the FP32 outputs stay bit for bit the same (power-of-two factors), and
// that the outlier channel's range comes down to the others'.
#include "detrq/quant/smoothing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "detrq/runtime/session.h"

using namespace detrq::quant;
using detrq::core::DType;
using detrq::core::Tensor;

namespace {

detrq::onnx::Node make(const std::string& op, const std::string& name, std::vector<std::string> in,
                       std::vector<std::string> out) {
  detrq::onnx::Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0F, 1.0F);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

constexpr int64_t kChannels = 8;
constexpr int kOutlier = 2;
constexpr float kOutlierScale = 64.0F;

// x [1, 5, 8] -> LayerNorm -> y -> MatMul(W1 [8, 6]) -> a, MatMul(W2 [8, 3]) -> b.
// Channel 2 of y is an outlier (gamma, beta x64) with W1/W2 row 2 divided by 64.
detrq::onnx::Model outlier_model() {
  detrq::onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.inputs.push_back({"x", DType::kFloat32, {1, 5, kChannels}, true});
  auto gamma = random_values(kChannels, 1), beta = random_values(kChannels, 2);
  auto w1 = random_values(kChannels * 6, 3), w2 = random_values(kChannels * 3, 4);
  gamma[kOutlier] *= kOutlierScale;
  beta[kOutlier] *= kOutlierScale;
  for (int c = 0; c < 6; ++c) w1[kOutlier * 6 + c] /= kOutlierScale;
  for (int c = 0; c < 3; ++c) w2[kOutlier * 3 + c] /= kOutlierScale;
  g.initializers["gamma"] = Tensor::from_vector<float>({kChannels}, gamma);
  g.initializers["beta"] = Tensor::from_vector<float>({kChannels}, beta);
  g.initializers["W1"] = Tensor::from_vector<float>({kChannels, 6}, w1);
  g.initializers["W2"] = Tensor::from_vector<float>({kChannels, 3}, w2);
  // beta reaches /ln through an Identity, as exports share equal weights (zero biases).
  g.nodes.push_back(make("Identity", "/share_beta", {"beta"}, {"beta_shared"}));
  g.nodes.push_back(make("LayerNormalization", "/ln", {"x", "gamma", "beta_shared"}, {"y"}));
  g.nodes.push_back(make("MatMul", "/fc1", {"y", "W1"}, {"a"}));
  g.nodes.push_back(make("MatMul", "/fc2", {"y", "W2"}, {"b"}));
  // A second LayerNorm sharing gamma/beta whose output is added, not multiplied: not a site, and its
  // gamma/beta must stay as they are when the first one's are changed.
  g.nodes.push_back(make("LayerNormalization", "/ln_other", {"x", "gamma", "beta"}, {"z"}));
  g.nodes.push_back(make("Add", "/add", {"z", "x"}, {"c"}));
  for (const char* o : {"a", "b", "c"}) g.outputs.push_back({o, DType::kFloat32, {}, false});
  return m;
}

std::map<std::string, Tensor> run(const detrq::onnx::Model& m, const Tensor& x, detrq::runtime::Observer* obs = nullptr) {
  detrq::runtime::SessionOptions options;
  options.threads = 1;
  options.keep_tensors = {"y"};
  detrq::runtime::Session s(m, options);
  return s.run({{"x", x}}, obs);
}

}  // namespace

TEST(Smoothing, FindsLayerNormsFeedingOnlyMatMulsByConstantWeights) {
  const auto sites = find_smoothing_sites(outlier_model());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].layernorm, "/ln");
  EXPECT_EQ(sites[0].activation, "y");
  EXPECT_EQ(sites[0].matmuls, (std::vector<std::string>{"/fc1", "/fc2"}));
}

TEST(Smoothing, KeepsTheFunctionBitForBitAndTamesTheOutlierChannel) {
  const auto original = outlier_model();
  const Tensor x = Tensor::from_vector<float>({1, 5, kChannels}, random_values(5 * kChannels, 9));
  ChannelMaxObserver before({"y"});
  const auto reference = run(original, x, &before);
  const std::vector<float> max_before = before.maxima().at("y");
  ASSERT_EQ(max_before.size(), static_cast<std::size_t>(kChannels));

  auto smoothed = original;
  const auto done = apply_smoothing(smoothed, find_smoothing_sites(smoothed), before.maxima(), 0.5);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_GE(done[0].max_factor, 8.0);
  ChannelMaxObserver after({"y"});
  const auto out = run(smoothed, x, &after);
  for (const char* name : {"a", "b", "c"}) {
    const auto r = reference.at(name).span<float>();
    const auto t = out.at(name).span<float>();
    ASSERT_EQ(r.size(), t.size());
    for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], t[i]) << name << "[" << i << "]";
  }
  // The outlier was 64x its neighbours' scale; smoothed, it is within a few times the median channel.
  auto median = [](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const std::vector<float> max_after = after.maxima().at("y");
  EXPECT_GT(max_before[kOutlier] / median(max_before), 16.0F);
  EXPECT_LT(max_after[kOutlier] / median(max_after), 4.0F);
  // The shared gamma/beta were copied for /ln; /ln_other still reads the originals, unchanged.
  EXPECT_NE(smoothed.graph.nodes[1].inputs[1], "gamma");
  EXPECT_NE(smoothed.graph.nodes[1].inputs[2], "beta_shared");
  EXPECT_EQ(smoothed.graph.nodes[4].inputs[1], "gamma");
  EXPECT_EQ(smoothed.graph.initializers.at("gamma").data<float>()[kOutlier],
            original.graph.initializers.at("gamma").data<float>()[kOutlier]);
}
