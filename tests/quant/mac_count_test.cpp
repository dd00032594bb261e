// Multiply-add counting on a hand-built Conv -> MatMul -> Gemm graph, counted by hand: per node, and
// the INT8 share of a policy's decisions and of a Q/DQ model.
#include "detrq/quant/mac_count.h"

#include <gtest/gtest.h>

#include "detrq/quant/qdq_insertion.h"

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

// x [1, 3, 8, 8] -> Conv(W [4, 3, 3, 3], pads 1) -> c [1, 4, 8, 8]
// Conv -> Flatten(axis 1) [1, 256] -> Gemm(B [256, 10]) -> g [1, 10] -> MatMul(M [10, 5]) -> y [1, 5].
detrq::onnx::Model model() {
  detrq::onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.inputs.push_back({"x", DType::kFloat32, {1, 3, 8, 8}, true});
  g.initializers["W"] = Tensor::from_vector<float>({4, 3, 3, 3}, std::vector<float>(4 * 27, 0.1F));
  g.initializers["B"] = Tensor::from_vector<float>({256, 10}, std::vector<float>(2560, 0.01F));
  g.initializers["M"] = Tensor::from_vector<float>({10, 5}, std::vector<float>(50, 0.2F));
  auto conv = make("Conv", "/conv", {"x", "W"}, {"c"});
  detrq::onnx::Attribute pads;
  pads.kind = detrq::onnx::Attribute::Kind::kInts;
  pads.ints = {1, 1, 1, 1};
  conv.attributes["pads"] = pads;
  g.nodes.push_back(conv);
  g.nodes.push_back(make("Flatten", "/flat", {"c"}, {"f"}));
  g.nodes.push_back(make("Gemm", "/gemm", {"f", "B"}, {"h"}));
  g.nodes.push_back(make("MatMul", "/mm", {"h", "M"}, {"y"}));
  g.outputs.push_back({"y", DType::kFloat32, {}, false});
  return m;
}

}  // namespace

TEST(MacCount, CountsOutputElementsTimesTheSumLength) {
  const auto macs = node_macs(model());
  EXPECT_EQ(macs.at("/conv"), 4 * 8 * 8 * (3 * 3 * 3));  // 6912
  EXPECT_EQ(macs.at("/gemm"), 10 * 256);
  EXPECT_EQ(macs.at("/mm"), 5 * 10);
}

TEST(MacCount, ShareOfDecisionsAndOfAQdqModel) {
  const auto macs = node_macs(model());
  std::vector<NodeDecision> decisions = {{"/conv", "Conv", true, {}}, {"/gemm", "Gemm", false, "x"},
                                         {"/mm", "MatMul", true, {}}};
  const MacCount c = count_macs(macs, decisions);
  EXPECT_EQ(c.total, 6912 + 2560 + 50);
  EXPECT_EQ(c.int8, 6912 + 50);
  EXPECT_DOUBLE_EQ(c.int8_share(), (6912.0 + 50.0) / (6912.0 + 2560.0 + 50.0));

  // The same decisions made real: /gemm excluded, Q/DQ inserted, counted from the file's structure.
  auto q = model();
  CalibrationTable table;
  for (const char* name : {"x", "c", "f", "h", "y"}) {
    TensorCalibration t;
    t.amax = 1.0;
    t.scale = 1.0F / 127.0F;
    table.tensors[name] = t;
  }
  PrecisionPolicy policy;
  policy.exclude = {"/gemm"};
  insert_qdq(q, table, policy);
  const MacCount from_file = count_qdq_macs(q);
  EXPECT_EQ(from_file.total, c.total);
  EXPECT_EQ(from_file.int8, c.int8);
}
