// Node attribute getters: defaults, typed access, and a clear error on a kind mismatch.
#include <gtest/gtest.h>

#include "detrq/core/error.h"
#include "detrq/onnx/model.h"

namespace detrq::onnx {
namespace {

Node conv_node() {
  Node n;
  n.name = "conv1";
  n.op_type = "Conv";
  Attribute group;
  group.kind = Attribute::Kind::kInt;
  group.i = 4;
  n.attributes["group"] = group;
  Attribute pads;
  pads.kind = Attribute::Kind::kInts;
  pads.ints = {1, 1, 1, 1};
  n.attributes["pads"] = pads;
  Attribute mode;
  mode.kind = Attribute::Kind::kString;
  mode.s = "NOTSET";
  n.attributes["auto_pad"] = mode;
  return n;
}

TEST(NodeAttributes, ReturnsValuesAndFallbacks) {
  const Node n = conv_node();
  EXPECT_EQ(n.attr_int("group", 1), 4);
  EXPECT_EQ(n.attr_int("missing", 7), 7);
  EXPECT_EQ(n.attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(n.attr_ints("strides", {2, 2}), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(n.attr_string("auto_pad", "x"), "NOTSET");
  EXPECT_FLOAT_EQ(n.attr_float("alpha", 0.5F), 0.5F);
  EXPECT_EQ(n.attr_tensor("value"), nullptr);
  EXPECT_TRUE(n.has_attr("pads"));
  EXPECT_FALSE(n.has_attr("dilations"));
}

TEST(NodeAttributes, KindMismatchNamesNodeAndAttribute) {
  const Node n = conv_node();
  try {
    (void)n.attr_float("group", 1.0F);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("Conv 'conv1'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'group' is int, expected float"), std::string::npos) << e.what();
  }
}

TEST(NodeAttributes, DescribeFallsBackToOutputName) {
  Node n;
  n.op_type = "Relu";
  n.outputs = {"y"};
  EXPECT_EQ(n.describe(), "Relu (output 'y')");
}

TEST(ModelOpset, DefaultDomainAliases) {
  Model m;
  m.opset_imports[""] = 17;
  EXPECT_EQ(m.opset(), 17);
  EXPECT_EQ(m.opset("ai.onnx"), 17);
  EXPECT_EQ(m.opset("com.microsoft"), 0);
}

}  // namespace
}  // namespace detrq::onnx
