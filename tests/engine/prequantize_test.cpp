// Weight pre-quantization: constant QuantizeLinear folded as ONNX defines it, everything else untouched.
#include "detrq/engine/cpu/prequantize.h"

#include <gtest/gtest.h>

namespace detrq::engine::cpu {
namespace {

onnx::Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  onnx::Node n;
  n.name = op + "_" + out[0];
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

TEST(Prequantize, PerTensorInt8RoundsHalfToEvenAndSaturates) {
  onnx::Model m;
  auto& g = m.graph;
  g.initializers["w"] = core::Tensor::from_vector<float>({6}, {1.25F, 1.75F, -1.25F, 1.6F, 100.0F, -100.0F});
  g.initializers["s"] = core::Tensor::scalar<float>(0.5F);
  g.initializers["z"] = core::Tensor::scalar<int8_t>(1);
  g.nodes.push_back(node("QuantizeLinear", {"w", "s", "z"}, {"wq"}));
  g.nodes.push_back(node("DequantizeLinear", {"wq", "s", "z"}, {"wd"}));
  g.outputs.push_back({"wd", core::DType::kFloat32, {6}, true});
  auto summary = prequantize_weights(m);
  EXPECT_EQ(summary.folded, 1U);
  EXPECT_EQ(summary.bytes_before, 24U);
  EXPECT_EQ(summary.bytes_after, 6U);
  ASSERT_EQ(g.nodes.size(), 1U);
  EXPECT_EQ(g.nodes[0].op_type, "DequantizeLinear");
  EXPECT_EQ(g.initializers.count("w"), 0U);  // the float weight is gone
  const auto& q = g.initializers.at("wq");
  ASSERT_EQ(q.dtype(), core::DType::kInt8);
  // 1.25/0.5 = 2.5 -> 2 (even), 1.75/0.5 = 3.5 -> 4, -2.5 -> -2, 3.2 -> 3, then + 1; +-200 saturate.
  const int8_t* v = q.data<int8_t>();
  EXPECT_EQ(v[0], 3);
  EXPECT_EQ(v[1], 5);
  EXPECT_EQ(v[2], -1);
  EXPECT_EQ(v[3], 4);
  EXPECT_EQ(v[4], 127);
  EXPECT_EQ(v[5], -128);
}

TEST(Prequantize, PerAxisAndUint8WithoutZeroPoint) {
  onnx::Model m;
  auto& g = m.graph;
  g.initializers["w"] = core::Tensor::from_vector<float>({2, 3}, {1, 2, 3, 1, 2, 3});
  g.initializers["s"] = core::Tensor::from_vector<float>({2}, {1.0F, 0.5F});
  g.initializers["z"] = core::Tensor::from_vector<int8_t>({2}, {0, -10});
  onnx::Node q = node("QuantizeLinear", {"w", "s", "z"}, {"wq"});
  onnx::Attribute axis;
  axis.kind = onnx::Attribute::Kind::kInt;
  axis.i = 0;
  q.attributes["axis"] = axis;
  g.nodes.push_back(q);
  g.initializers["u"] = core::Tensor::from_vector<float>({2}, {-1.0F, 300.0F});
  g.nodes.push_back(node("QuantizeLinear", {"u", "s1"}, {"uq"}));
  g.initializers["s1"] = core::Tensor::scalar<float>(1.0F);
  prequantize_weights(m);
  const int8_t* w = g.initializers.at("wq").data<int8_t>();
  EXPECT_EQ((std::vector<int8_t>(w, w + 6)), (std::vector<int8_t>{1, 2, 3, -8, -6, -4}));
  const uint8_t* u = g.initializers.at("uq").data<uint8_t>();
  EXPECT_EQ(u[0], 0);
  EXPECT_EQ(u[1], 255);
  EXPECT_TRUE(g.nodes.empty());
}

TEST(Prequantize, LeavesActivationsAndSharedWeightsAlone) {
  onnx::Model m;
  auto& g = m.graph;
  g.inputs.push_back({"x", core::DType::kFloat32, {3}, true});
  g.initializers["s"] = core::Tensor::scalar<float>(0.5F);
  g.initializers["w"] = core::Tensor::from_vector<float>({3}, {1, 2, 3});
  g.nodes.push_back(node("QuantizeLinear", {"x", "s"}, {"xq"}));  // an activation: stays
  g.nodes.push_back(node("QuantizeLinear", {"w", "s"}, {"wq"}));
  g.nodes.push_back(node("Add", {"x", "w"}, {"y"}));  // w is read elsewhere: kept
  auto summary = prequantize_weights(m);
  EXPECT_EQ(summary.folded, 1U);
  EXPECT_EQ(g.nodes.size(), 2U);
  EXPECT_EQ(g.nodes[0].outputs[0], "xq");
  EXPECT_EQ(g.initializers.count("w"), 1U);
  EXPECT_EQ(summary.bytes_before, 0U);
}

}  // namespace
}  // namespace detrq::engine::cpu
