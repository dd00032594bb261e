// Q/DQ insertion on a small hand-built graph: which nodes are quantized and why not, per-channel
// weights, shared Q/DQ per tensor, topological order, and the precision policy's patterns.
#include "detrq/quant/qdq_insertion.h"

#include <gtest/gtest.h>

#include <set>

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

// input -> Conv(patch) -> t0 -> Conv(W1) -> t1 -> MatMul(W2) -> t2 ; MatMul(t2, t1t) score ;
// sampling_offsets MatMul ; an Identity-shared weight ; masked tensor with inf.
detrq::onnx::Model sample_model() {
  detrq::onnx::Model m;
  m.opset_imports[""] = 11;
  auto& g = m.graph;
  g.inputs.push_back({"input", DType::kFloat32, {1, 2, 4, 4}, true});
  std::vector<float> w0(4 * 2, 0.5F), w1(4 * 4), w2(4 * 3);
  for (std::size_t i = 0; i < w1.size(); ++i) w1[i] = static_cast<float>(i) - 7.0F;
  for (std::size_t i = 0; i < w2.size(); ++i) w2[i] = static_cast<float>(i % 3) * (i < 6 ? 1.0F : -2.0F);
  g.initializers["W0"] = Tensor::from_vector<float>({4, 2, 1, 1}, w0);
  g.initializers["W1"] = Tensor::from_vector<float>({4, 4, 1, 1}, w1);
  g.initializers["W2"] = Tensor::from_vector<float>({4, 3}, w2);
  g.nodes.push_back(make("Conv", "/embeddings/patch_embeddings/Conv", {"input", "W0"}, {"t0"}));
  g.nodes.push_back(make("Conv", "/encoder/conv", {"t0", "W1"}, {"t1"}));
  g.nodes.push_back(make("Transpose", "/encoder/to_rows", {"t1"}, {"rows"}));
  g.nodes.push_back(make("Identity", "/shared", {"W2"}, {"W2_shared"}));
  g.nodes.push_back(make("MatMul", "/encoder/fc", {"rows", "W2"}, {"t2"}));
  g.nodes.push_back(make("MatMul", "/decoder/fc_shared", {"rows", "W2_shared"}, {"t3"}));
  g.nodes.push_back(make("MatMul", "/decoder/cross_attn/sampling_offsets/MatMul", {"rows", "W2"}, {"off"}));
  g.nodes.push_back(make("MatMul", "/decoder/attn/MatMul", {"t2", "t3"}, {"score"}));
  g.nodes.push_back(make("MatMul", "/decoder/masked_fc", {"masked", "W2"}, {"t4"}));
  g.inputs.push_back({"masked", DType::kFloat32, {1, 4}, true});
  g.outputs.push_back({"score", DType::kFloat32, {}, false});
  g.outputs.push_back({"off", DType::kFloat32, {}, false});
  g.outputs.push_back({"t4", DType::kFloat32, {}, false});
  return m;
}

CalibrationTable sample_table() {
  CalibrationTable t;
  for (const char* name : {"input", "t0", "t1", "rows", "t2", "t3"}) {
    TensorCalibration c;
    c.amax = 6.35;
    c.scale = 0.05F;
    t.tensors[name] = c;
  }
  TensorCalibration masked;
  masked.quantized = false;
  masked.reason = "80.0% of its values are inf or NaN";
  t.tensors["masked"] = masked;
  return t;
}

const detrq::onnx::Node* find_node(const detrq::onnx::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes) if (n.name == name) return &n;
  return nullptr;
}

}  // namespace

TEST(GlobMatch, StarsAndQuestionMarks) {
  EXPECT_TRUE(glob_match("*bbox_embed*", "/m/bbox_embed/layers.0/MatMul"));
  EXPECT_TRUE(glob_match("/m/*/MatMul", "/m/a/b/MatMul"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_FALSE(glob_match("*bbox*", "/m/class_embed/MatMul"));
  EXPECT_TRUE(glob_match("*", ""));
}

TEST(QdqInsertion, QuantizesWhatThePolicyAllowsAndSaysWhyNot) {
  auto model = sample_model();
  auto summary = insert_qdq(model, sample_table(), PrecisionPolicy{});
  std::map<std::string, NodeDecision> d;
  for (const auto& x : summary.decisions) d[x.node] = x;
  // The patch embedding and attention score products are most of a ViT's work: INT8 by default.
  EXPECT_TRUE(d["/embeddings/patch_embeddings/Conv"].quantize);
  EXPECT_TRUE(d["/encoder/conv"].quantize);
  EXPECT_TRUE(d["/encoder/fc"].quantize);
  EXPECT_TRUE(d["/decoder/fc_shared"].quantize);
  EXPECT_FALSE(d["/decoder/cross_attn/sampling_offsets/MatMul"].quantize);
  EXPECT_TRUE(d["/decoder/attn/MatMul"].quantize);
  EXPECT_FALSE(d["/decoder/masked_fc"].quantize);
  EXPECT_NE(d["/decoder/masked_fc"].reason.find("inf or NaN"), std::string::npos);
  EXPECT_EQ(summary.quantized_nodes, 5);
  EXPECT_EQ(summary.quantized_weights, 3);      // W0, W1 (axis 0), W2 (axis 1)
  EXPECT_EQ(summary.quantized_activations, 5);  // input, t0, rows, t2, t3
  EXPECT_EQ(model.opset_imports.at(""), 13);
}

TEST(QdqInsertion, FloatAttentionAndStemKeepsScoreProductsAndThePatchEmbeddingFloat) {
  auto model = sample_model();
  PrecisionPolicy policy;
  policy.float_attention_and_stem = true;
  auto summary = insert_qdq(model, sample_table(), policy);
  std::map<std::string, NodeDecision> d;
  for (const auto& x : summary.decisions) d[x.node] = x;
  EXPECT_FALSE(d["/embeddings/patch_embeddings/Conv"].quantize);
  EXPECT_NE(d["/embeddings/patch_embeddings/Conv"].reason.find("patch embedding"), std::string::npos);
  EXPECT_FALSE(d["/decoder/attn/MatMul"].quantize);
  EXPECT_NE(d["/decoder/attn/MatMul"].reason.find("attention score"), std::string::npos);
  EXPECT_EQ(summary.quantized_nodes, 3);

  const auto& g = model.graph;
  // W2 quantized once per channel axis (shared through Identity too); t0 and rows get one Q/DQ each.
  EXPECT_EQ(summary.quantized_weights, 2);     // W1 (axis 0), W2 (axis 1)
  EXPECT_EQ(summary.quantized_activations, 2);  // t0, rows
  const auto* fc = find_node(g, "/encoder/fc");
  const auto* shared = find_node(g, "/decoder/fc_shared");
  EXPECT_EQ(fc->inputs, shared->inputs);
  EXPECT_EQ(find_node(g, "/shared"), nullptr);  // the Identity died with its last reader
  const Tensor& q2 = g.initializers.at("W2_quantized");
  EXPECT_EQ(q2.dtype(), DType::kInt8);
  const Tensor& s2 = g.initializers.at("W2_scale");
  ASSERT_EQ(s2.numel(), 3);
  // W2 columns: 0, then i%3 = 1 -> max |x| 2, i%3 = 2 -> max |x| 4.
  EXPECT_EQ(s2.data<float>()[0], 1.0F);  // an all-zero channel
  EXPECT_FLOAT_EQ(s2.data<float>()[1], 2.0F / 127.0F);
  EXPECT_FLOAT_EQ(s2.data<float>()[2], 4.0F / 127.0F);
  // W2 is still read in float by the excluded nodes; W1 is not.
  EXPECT_EQ(g.initializers.count("W2"), 1u);
  EXPECT_EQ(g.initializers.count("W1"), 0u);

  // Every input is defined before it is read (what onnx.checker demands).
  std::set<std::string> defined;
  for (const auto& in : g.inputs) defined.insert(in.name);
  for (const auto& [name, t] : g.initializers) defined.insert(name);
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) EXPECT_TRUE(in.empty() || defined.count(in)) << n.name << " reads " << in;
    for (const auto& o : n.outputs) defined.insert(o);
  }
}

TEST(QdqInsertion, IncludeAndExcludePatternsOverrideTheDefaults) {
  auto model = sample_model();
  PrecisionPolicy policy;
  policy.include = {"*sampling_offsets*"};
  policy.exclude = {"/encoder/*"};
  auto summary = insert_qdq(model, sample_table(), policy);
  std::map<std::string, NodeDecision> d;
  for (const auto& x : summary.decisions) d[x.node] = x;
  EXPECT_TRUE(d["/decoder/cross_attn/sampling_offsets/MatMul"].quantize);
  EXPECT_FALSE(d["/encoder/conv"].quantize);
  EXPECT_EQ(d["/encoder/conv"].reason, "excluded by --exclude /encoder/*");
}

TEST(QuantizeWeightPerChannel, NarrowRangeRoundTripWithinHalfAStep) {
  std::vector<float> w{0.1F, -0.2F, 0.3F, 10.0F, -5.0F, 2.5F};
  auto t = Tensor::from_vector<float>({2, 3}, w);
  std::vector<float> scales;
  auto q = quantize_weight_per_channel(t, 0, scales);
  ASSERT_EQ(scales.size(), 2u);
  EXPECT_FLOAT_EQ(scales[0], 0.3F / 127.0F);
  EXPECT_FLOAT_EQ(scales[1], 10.0F / 127.0F);
  for (int i = 0; i < 6; ++i) {
    const int8_t v = q.data<int8_t>()[i];
    EXPECT_GE(v, -127);
    EXPECT_NEAR(v * scales[i / 3], w[i], scales[i / 3] / 2 + 1e-7F);
  }
  EXPECT_EQ(q.data<int8_t>()[3], 127);
}

TEST(TensorsToCalibrate, InputsAndOutputsOfTheLayersThePolicyQuantizes) {
  auto model = sample_model();
  auto watched = tensors_to_calibrate(model, PrecisionPolicy{});
  // Graph inputs; t0/t1 around the quantized conv; rows and t2/t3 of the quantized MatMuls; "masked"
  // feeds a quantizable MatMul (calibration decides it stays float); score, the output of the INT8
  // attention product. Not: off (the float sampling offsets).
  EXPECT_EQ(watched, (std::set<std::string>{"input", "masked", "t0", "t1", "rows", "t2", "t3", "t4", "score"}));
}

namespace {
// sample_model() plus a proposal scorer: rows -> MatMul(W2) -> s -> TopK -> idx -> Gather(t3) -> picked.
detrq::onnx::Model ranking_model() {
  auto model = sample_model();
  auto& g = model.graph;
  g.nodes.push_back(make("MatMul", "/encoder/score_head", {"rows", "W2"}, {"s"}));
  g.nodes.push_back(make("TopK", "/select", {"s", "k"}, {"vals", "idx"}));
  g.nodes.push_back(make("Gather", "/gather", {"t3", "idx"}, {"picked"}));
  g.initializers["k"] = Tensor::from_vector<int64_t>({1}, {2});
  g.outputs.push_back({"picked", DType::kFloat32, {}, false});
  return model;
}
}  // namespace

TEST(QdqInsertion, LayersThatOnlyScoreATopKStayFloatUnlessIncluded) {
  auto model = ranking_model();
  auto summary = insert_qdq(model, sample_table(), PrecisionPolicy{});
  std::map<std::string, NodeDecision> d;
  for (const auto& x : summary.decisions) d[x.node] = x;
  EXPECT_FALSE(d["/encoder/score_head"].quantize);
  EXPECT_NE(d["/encoder/score_head"].reason.find("TopK"), std::string::npos);
  // Upstream of the ranking too, but also of the outputs: INT8.
  EXPECT_TRUE(d["/encoder/conv"].quantize);
  EXPECT_TRUE(d["/decoder/fc_shared"].quantize);

  auto again = ranking_model();
  PrecisionPolicy policy;
  policy.include = {"/encoder/*"};
  auto s2 = insert_qdq(again, sample_table(), policy);
  std::map<std::string, NodeDecision> d2;
  for (const auto& x : s2.decisions) d2[x.node] = x;
  ASSERT_EQ(d2.count("/encoder/score_head"), 1U);
  EXPECT_TRUE(d2["/encoder/score_head"].quantize) << d2["/encoder/score_head"].reason;
}

namespace {
// x -> Relu -> Conv(W) -> c -> Add(c, bias) -> cb -> Add(cb, skip) -> y; Add(skip, skip2) -> z (no INT8 layer before it).
detrq::onnx::Model residual_model() {
  detrq::onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.inputs.push_back({"x", DType::kFloat32, {1, 2, 2, 2}, true});
  g.inputs.push_back({"skip", DType::kFloat32, {1, 2, 2, 2}, true});
  g.inputs.push_back({"skip2", DType::kFloat32, {1, 2, 2, 2}, true});
  g.initializers["W"] = Tensor::from_vector<float>({2, 2, 1, 1}, {1.0F, -0.5F, 0.25F, 2.0F});
  g.initializers["bias"] = Tensor::from_vector<float>({1, 2, 1, 1}, {0.1F, -0.1F});
  g.nodes.push_back(make("Relu", "/block/relu", {"x"}, {"xr"}));  // a Conv reading the image stays float
  g.nodes.push_back(make("Conv", "/block/conv", {"xr", "W"}, {"c"}));
  g.nodes.push_back(make("Add", "/block/bias", {"c", "bias"}, {"cb"}));
  g.nodes.push_back(make("Add", "/block/residual", {"cb", "skip"}, {"y"}));
  g.nodes.push_back(make("Add", "/other/sum", {"skip", "skip2"}, {"z"}));
  g.outputs.push_back({"y", DType::kFloat32, {}, false});
  g.outputs.push_back({"z", DType::kFloat32, {}, false});
  return m;
}

CalibrationTable residual_table() {
  CalibrationTable t;
  for (const char* name : {"x", "xr", "skip", "skip2", "c"}) {
    TensorCalibration c;
    c.amax = 2.54;
    c.scale = 0.02F;
    t.tensors[name] = c;
  }
  return t;
}
}  // namespace

TEST(QdqInsertion, ResidualAddsGetQdqOnTheirSkipInputOnlyWhenAsked) {
  PrecisionPolicy off;
  auto plain = residual_model();
  EXPECT_EQ(tensors_to_calibrate(plain, off), (std::set<std::string>{"x", "skip", "skip2", "xr", "c"}));
  auto s0 = insert_qdq(plain, residual_table(), off);
  EXPECT_EQ(s0.quantized_nodes, 1);
  EXPECT_EQ(s0.quantized_residuals, 0);
  EXPECT_EQ(find_node(plain.graph, "/block/residual")->inputs[1], "skip");

  PrecisionPolicy on;
  on.residual_adds = true;
  auto model = residual_model();
  EXPECT_TRUE(tensors_to_calibrate(model, on).count("skip"));
  auto s1 = insert_qdq(model, residual_table(), on);
  EXPECT_EQ(s1.quantized_residuals, 1);
  const auto* add = find_node(model.graph, "/block/residual");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->inputs[0], "cb");  // the layer's side stays as it is
  const std::string dq = add->inputs[1];
  const detrq::onnx::Node* producer = nullptr;
  for (const auto& n : model.graph.nodes) {
    if (!n.outputs.empty() && n.outputs[0] == dq) producer = &n;
  }
  ASSERT_NE(producer, nullptr);
  EXPECT_EQ(producer->op_type, "DequantizeLinear");
  EXPECT_FLOAT_EQ(model.graph.initializers.at(producer->inputs[1]).data<float>()[0], 0.02F);
  // An Add with no INT8 layer before it is left alone.
  EXPECT_EQ(find_node(model.graph, "/other/sum")->inputs, (std::vector<std::string>{"skip", "skip2"}));

  // Without a scale for the skip input the Add stays float.
  auto model2 = residual_model();
  auto table = residual_table();
  table.tensors["skip"].quantized = false;
  EXPECT_EQ(insert_qdq(model2, table, on).quantized_residuals, 0);
  EXPECT_EQ(find_node(model2.graph, "/block/residual")->inputs[1], "skip");
}
