// The CPU builder on a small Q/DQ convolution: weights are quantized at build time, the engine loads
// (mapped) into a Session whose outputs equal those of the ONNX model it came from, and it records
// the CPU features asked for.
#include "detrq/engine/cpu/cpu_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "detrq/core/error.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace detrq::engine::cpu {
namespace {

namespace fs = std::filesystem;

onnx::Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  onnx::Node n;
  n.name = op + "_" + out[0];
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// x [1,3,5,5] -> Q/DQ -> Conv(W: Q/DQ of float weights, per output channel) -> y [1,2,3,3]
onnx::Model qdq_conv() {
  onnx::Model m;
  m.opset_imports[""] = 17;
  m.metadata["class_names"] = R"({"1": "a"})";
  auto& g = m.graph;
  g.name = "qdq_conv";
  g.inputs.push_back({"x", core::DType::kFloat32, {1, 3, 5, 5}, true});
  g.outputs.push_back({"y", core::DType::kFloat32, {1, 2, 3, 3}, true});
  std::vector<float> w(2 * 3 * 3 * 3);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.05F * static_cast<float>(static_cast<int>(i % 11) - 5);
  g.initializers["W"] = core::Tensor::from_vector<float>({2, 3, 3, 3}, w);
  g.initializers["w_scale"] = core::Tensor::from_vector<float>({2}, {0.25F / 127, 0.2F / 127});
  g.initializers["w_zero"] = core::Tensor::from_vector<int8_t>({2}, {0, 0});
  g.initializers["x_scale"] = core::Tensor::scalar<float>(2.0F / 127);
  g.initializers["x_zero"] = core::Tensor::scalar<int8_t>(0);
  g.initializers["B"] = core::Tensor::from_vector<float>({2}, {0.1F, -0.2F});
  onnx::Attribute axis;
  axis.kind = onnx::Attribute::Kind::kInt;
  axis.i = 0;
  onnx::Node qw = node("QuantizeLinear", {"W", "w_scale", "w_zero"}, {"Wq"});
  qw.attributes["axis"] = axis;
  onnx::Node dqw = node("DequantizeLinear", {"Wq", "w_scale", "w_zero"}, {"Wd"});
  dqw.attributes["axis"] = axis;
  g.nodes = {node("QuantizeLinear", {"x", "x_scale", "x_zero"}, {"xq"}),
             node("DequantizeLinear", {"xq", "x_scale", "x_zero"}, {"xd"}), qw, dqw,
             node("Conv", {"xd", "Wd", "B"}, {"y"})};
  return m;
}

TEST(CpuBuilder, EngineRunsLikeTheOnnxItCameFrom) {
  const fs::path dir = fs::temp_directory_path() / ("detrq_cpu_builder_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  onnx::save_model(qdq_conv(), dir / "m.qdq.onnx");
  BuildRequest req;
  req.qdq = dir / "m.qdq.onnx";
  req.output = dir / "m.engine";
  req.cpu_features = std::vector<std::string>{"sse4.2"};
  const BuildResult result = CpuBuilder().build(req);
  EXPECT_EQ(result.backend, "cpu");
  EXPECT_NE(result.description.find("int8"), std::string::npos) << result.description;

  EngineFile ef = read_engine_file(req.output, {"sse4.2"});
  EXPECT_EQ(ef.header.precision, "int8");
  EXPECT_EQ(ef.header.cpu_features, std::vector<std::string>{"sse4.2"});
  EXPECT_EQ(ef.model.metadata.at("class_names"), R"({"1": "a"})");
  // The weights' Q/DQ pair was computed at build time: what is stored is the float weight the runtime
  // convolves with, every value a whole multiple of its channel's scale, and no Q/DQ node reads it.
  const core::Tensor* weight = nullptr;
  for (const auto& [name, t] : ef.model.graph.initializers) {
    if (t.shape() == core::Shape{2, 3, 3, 3}) weight = &t;
  }
  ASSERT_NE(weight, nullptr);
  const float scales[2] = {0.25F / 127, 0.2F / 127};
  for (int64_t i = 0; i < weight->numel(); ++i) {
    const float q = weight->data<float>()[i] / scales[i / 27];
    EXPECT_NEAR(q, std::nearbyint(q), 1e-3) << i;
    EXPECT_TRUE(q >= -128.5F && q <= 127.5F) << q;  // channel 1 saturates: 0.25 / (0.2 / 127) > 127
  }
  int qdq_nodes = 0;
  for (const auto& n : ef.model.graph.nodes) qdq_nodes += n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear";
  EXPECT_EQ(qdq_nodes, 2);  // the activation's pair only

  std::vector<float> xs(75);
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.37F * static_cast<float>(i));
  const core::Tensor x = core::Tensor::from_vector<float>({1, 3, 5, 5}, xs);
  runtime::Session from_onnx = runtime::Session::load(req.qdq);
  runtime::Session from_engine(std::move(ef.model));
  const auto a = from_onnx.run({{"x", x}}).at("y");
  const auto b = from_engine.run({{"x", x}}).at("y");
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
  fs::remove_all(dir);
}

TEST(CpuBuilder, RefusesACacheWithoutQdqAndMissingInputs) {
  BuildRequest req;
  req.onnx = "model.onnx";
  req.calibration_cache = "calibration.cache";
  req.output = "x.engine";
  try {
    CpuBuilder().build(req);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(e.hint().find("--qdq"), std::string::npos);
  }
  BuildRequest none;
  none.output = "x.engine";
  EXPECT_THROW(CpuBuilder().build(none), Error);
}

TEST(Builder, BackendNamesAndTensorRtAbsence) {
  EXPECT_EQ(parse_backend("cpu"), Backend::kCpu);
  EXPECT_STREQ(backend_name(parse_backend("tensorrt")), "tensorrt");
  EXPECT_THROW(parse_backend("gpu"), Error);
  EXPECT_STREQ(make_builder(Backend::kCpu)->name(), "cpu");
  if (!tensorrt_compiled()) {
    EXPECT_STREQ(make_builder(Backend::kAuto)->name(), "cpu");
    EXPECT_THROW(make_builder(Backend::kTensorRt), Error);
  }
}

}  // namespace
}  // namespace detrq::engine::cpu
