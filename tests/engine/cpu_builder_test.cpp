// The CPU builder on a small Q/DQ convolution and on MatMul/Gemm models: weights are quantized at build
// time and stored as int8, packed weights are stored and restored from the mapping without packing, the
// engine's outputs equal those of the ONNX model it came from bit for bit, and its kernels pack for the
// CPU target asked for (not the host's), the header requiring exactly what those states need.
#include "detrq/engine/cpu/cpu_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "detrq/core/error.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/engine/cpu/prequantize.h"
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
  EXPECT_EQ(ef.header.target_features, std::vector<std::string>{"sse4.2"});
  EXPECT_EQ(ef.header.cpu_features, std::vector<std::string>{});  // its one state (float panels) needs nothing
  EXPECT_EQ(ef.model.metadata.at("class_names"), R"({"1": "a"})");
  // The weight's QuantizeLinear was computed at build time: what is stored is the int8 weight, which
  // its DequantizeLinear (kept) turns back into floats at load; the float weight is gone.
  const core::Tensor* weight = nullptr;
  for (const auto& [name, t] : ef.model.graph.initializers) {
    if (t.shape() == core::Shape{2, 3, 3, 3}) weight = &t;
  }
  ASSERT_NE(weight, nullptr);
  ASSERT_EQ(weight->dtype(), core::DType::kInt8);
  const float scales[2] = {0.25F / 127, 0.2F / 127};
  std::vector<float> w(2 * 3 * 3 * 3);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.05F * static_cast<float>(static_cast<int>(i % 11) - 5);
  for (int64_t i = 0; i < weight->numel(); ++i) {
    const float want = std::fmin(std::fmax(std::nearbyint(w[static_cast<std::size_t>(i)] / scales[i / 27]), -128.0F), 127.0F);
    EXPECT_EQ(static_cast<float>(weight->data<int8_t>()[i]), want) << i;  // channel 1 saturates
  }
  int qdq_nodes = 0;
  for (const auto& n : ef.model.graph.nodes) qdq_nodes += n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear";
  // The activation's QuantizeLinear; the Conv with both DequantizeLinear became one int8 QConvF.
  EXPECT_EQ(qdq_nodes, 1);
  // No QuantizeLinear of a weight is left to run (the activation's may be, or an int8 Conv may hold it).
  for (const auto& n : ef.model.graph.nodes) {
    EXPECT_FALSE(n.op_type == "QuantizeLinear" && n.inputs.at(0) == "W") << "the weight is quantized at run time";
  }

  std::vector<float> xs(75);
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.37F * static_cast<float>(i));
  const core::Tensor x = core::Tensor::from_vector<float>({1, 3, 5, 5}, xs);
  // Bit for bit what a Session computes from the same graph (weights quantized as the builder does); the
  // ONNX itself may run the Conv in float where the engine's int8 weight lets it run in int8, so it only
  // agrees to float rounding.
  onnx::Model prequantized = onnx::load_model(req.qdq);
  prequantize_weights(prequantized);
  runtime::Session same_graph(std::move(prequantized));
  runtime::Session from_onnx = runtime::Session::load(req.qdq);
  runtime::Session from_engine = engine_session(std::move(ef), req.output);
  const auto a = same_graph.run({{"x", x}}).at("y");
  const auto b = from_engine.run({{"x", x}}).at("y");
  const auto c = from_onnx.run({{"x", x}}).at("y");
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(c.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
    EXPECT_NEAR(c.data<float>()[i], b.data<float>()[i], 1e-5F * (1.0F + std::fabs(c.data<float>()[i]))) << i;
  }
  fs::remove_all(dir);
}

// x [4,40] -> MatMul(W1 [40,24]) -> Relu -> Gemm(W2 [24,10], bias) -> y [4,10], float32, optionally
// with per-column Q/DQ on both weights (the quantizer's layout for MatMul weights: axis 1).
onnx::Model mlp(bool qdq) {
  onnx::Model m;
  m.opset_imports[""] = 17;
  m.metadata["class_names"] = R"({"1": "a"})";
  auto& g = m.graph;
  g.name = "mlp";
  g.inputs.push_back({"x", core::DType::kFloat32, {4, 40}, true});
  g.outputs.push_back({"y", core::DType::kFloat32, {4, 10}, true});
  auto weight = [](int64_t rows, int64_t cols, float phase) {
    std::vector<float> v(static_cast<std::size_t>(rows * cols));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.3F * std::sin(phase + 0.7F * static_cast<float>(i));
    return core::Tensor::from_vector<float>({rows, cols}, v);
  };
  g.initializers["W1"] = weight(40, 24, 0.1F);
  g.initializers["W2"] = weight(10, 24, 0.9F);  // Gemm with transB: [N, K]
  g.initializers["B2"] = weight(1, 10, 2.0F).reshaped({10});
  std::string w1 = "W1", w2 = "W2";
  if (qdq) {
    onnx::Attribute axis;
    axis.kind = onnx::Attribute::Kind::kInt;
    axis.i = 1;
    for (auto [name, cols] : {std::pair<std::string, int64_t>{"W1", 24}, {"W2", 10}}) {
      axis.i = name == "W1" ? 1 : 0;  // the output channels: MatMul's columns, Gemm's rows under transB
      std::vector<float> scale(static_cast<std::size_t>(cols));
      for (std::size_t c = 0; c < scale.size(); ++c) scale[c] = (0.2F + 0.01F * static_cast<float>(c)) / 127;
      g.initializers[name + "_s"] = core::Tensor::from_vector<float>({cols}, scale);
      g.initializers[name + "_z"] = core::Tensor::from_vector<int8_t>({cols}, std::vector<int8_t>(scale.size(), 0));
      onnx::Node q = node("QuantizeLinear", {name, name + "_s", name + "_z"}, {name + "_q"});
      onnx::Node dq = node("DequantizeLinear", {name + "_q", name + "_s", name + "_z"}, {name + "_d"});
      q.attributes["axis"] = axis;
      dq.attributes["axis"] = axis;
      g.nodes.push_back(q);
      g.nodes.push_back(dq);
    }
    w1 = "W1_d";
    w2 = "W2_d";
  }
  g.nodes.push_back(node("MatMul", {"x", w1}, {"h"}));
  g.nodes.push_back(node("Relu", {"h"}, {"r"}));
  onnx::Node gemm = node("Gemm", {"r", w2, "B2"}, {"y"});
  onnx::Attribute trans;
  trans.kind = onnx::Attribute::Kind::kInt;
  trans.i = 1;
  gemm.attributes["transB"] = trans;
  g.nodes.push_back(gemm);
  return m;
}

core::Tensor mlp_input() {
  std::vector<float> xs(160);
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = std::cos(0.29F * static_cast<float>(i));
  return core::Tensor::from_vector<float>({4, 40}, xs);
}

bool bit_equal(const core::Tensor& a, const core::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// x [4,40] -> Q/DQ -> MatMul(DQ(int8 W [40,24], per column)) -> y: an int8 MatMul (QMatMulF), whose packed
// weights are laid out per ISA.
onnx::Model qdq_matmul() {
  onnx::Model m = mlp(true);
  auto& g = m.graph;
  g.outputs = {{"h", core::DType::kFloat32, {4, 24}, true}};
  g.initializers["x_s"] = core::Tensor::scalar<float>(2.0F / 127);
  g.initializers["x_z"] = core::Tensor::scalar<int8_t>(0);
  g.nodes.insert(g.nodes.begin(), {node("QuantizeLinear", {"x", "x_s", "x_z"}, {"x_q"}),
                                   node("DequantizeLinear", {"x_q", "x_s", "x_z"}, {"x_d"})});
  for (auto& n : g.nodes) {
    if (n.op_type == "MatMul") n.inputs[0] = "x_d";
  }
  return m;
}

// The bug this guards: the header said "avx2, fma" while the session packed AVX-512 VNNI weights for the
// host, so the engine refused to run on the AVX2 machine it was built for. Packing is data layout: a
// target wider than this machine packs too, and is refused at load where the CPU lacks it.
TEST(CpuBuilder, PacksForTheRequestedTargetNotTheHost) {
  const fs::path dir = fs::temp_directory_path() / ("detrq_cpu_builder_target_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  onnx::save_model(qdq_matmul(), dir / "m.qdq.onnx");
  struct Case {
    std::vector<std::string> features, needs;
    std::string layout;
  };
  const Case cases[] = {{{"avx2", "fma"}, {"avx2"}, "int8-gemm-w/1 isa=avx2"},
                        {{"avx2", "fma", "avx512f", "avx512bw", "avx512vnni"},
                         {"avx512f", "avx512bw", "avx512vnni"},
                         "int8-gemm-w/1 isa=avx512vnni"},
                        {{}, {}, "int8-gemm-w/1 reference"}};
  for (const Case& c : cases) {
    BuildRequest req;
    req.qdq = dir / "m.qdq.onnx";
    req.output = dir / "m.engine";
    req.cpu_features = c.features;
    CpuBuilder().build(req);
    const EngineHeader h = read_engine_header(req.output);
    EXPECT_EQ(h.target_features, c.features);
    EXPECT_EQ(h.cpu_features, c.needs);
    // Read with exactly the target's features (whatever this CPU has): every state fits them.
    const EngineFile ef = read_engine_file(req.output, c.features);
    int int8_states = 0;
    for (const auto& [key, state] : ef.packed_states) {
      if (state.layout.rfind("int8-gemm-w/1", 0) != 0) continue;
      ++int8_states;
      EXPECT_EQ(state.layout, c.layout) << key;
      EXPECT_EQ(state.isa.names(), c.needs) << key;
    }
    EXPECT_EQ(int8_states, 1);
    if (!c.needs.empty()) {
      try {
        const bool avx2 = c.features == std::vector<std::string>{"avx2", "fma"};
        read_engine_file(req.output, avx2 ? std::vector<std::string>{"sse4.2"} : std::vector<std::string>{"avx2", "fma"});
        ADD_FAILURE() << "an engine needing " << c.needs.back() << " loaded where it is missing";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
        EXPECT_NE(std::string(e.what()).find("engine was built for CPU features this CPU lacks: " + c.needs[0]),
                  std::string::npos)
            << e.what();
      }
    }
  }
  fs::remove_all(dir);
}

TEST(CpuBuilder, Float32EngineStoresPackedWeightsInsteadOfTheWeights) {
  const fs::path dir = fs::temp_directory_path() / ("detrq_cpu_builder_fp32_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  onnx::save_model(mlp(false), dir / "m.onnx");
  BuildRequest req;
  req.onnx = dir / "m.onnx";
  req.output = dir / "m.engine";
  const BuildResult result = CpuBuilder().build(req);
  EXPECT_NE(result.description.find("2 pre-packed"), std::string::npos) << result.description;

  EngineFile ef = read_engine_file(req.output);
  EXPECT_EQ(ef.header.packed_state_count, 2U);
  // MatMul's and Gemm's B are stored once, packed: not also as initializers.
  EXPECT_EQ(ef.model.graph.initializers.count("W1"), 0U);
  EXPECT_EQ(ef.model.graph.initializers.count("W2"), 0U);
  EXPECT_EQ(ef.model.graph.initializers.count("B2"), 1U);
  ASSERT_EQ(ef.packed_states.count("h"), 1U);
  const void* blob = ef.packed_states.at("h").blobs.at(0).raw_data();
  const auto mapping = ef.mapping;
  runtime::Session from_onnx = runtime::Session::load(req.onnx);
  runtime::Session from_engine = engine_session(std::move(ef), req.output);
  // The restored kernel packs nothing: what it hands back is the mapped blob itself.
  EXPECT_EQ(from_engine.packed_states().at("h").blobs.at(0).raw_data(), blob);
  EXPECT_EQ(from_engine.weight_bytes(), 10 * sizeof(float));
  const core::Tensor x = mlp_input();
  EXPECT_TRUE(bit_equal(from_onnx.run({{"x", x}}).at("y"), from_engine.run({{"x", x}}).at("y")));
  fs::remove_all(dir);
}

TEST(CpuBuilder, QdqEngineStoresInt8WeightsAndRunsLikeTheOnnx) {
  const fs::path dir = fs::temp_directory_path() / ("detrq_cpu_builder_qdq_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  onnx::save_model(mlp(true), dir / "m.qdq.onnx");
  onnx::save_model(mlp(false), dir / "m.onnx");
  BuildRequest req;
  req.qdq = dir / "m.qdq.onnx";
  req.output = dir / "m.engine";
  CpuBuilder().build(req);
  BuildRequest fp32;
  fp32.onnx = dir / "m.onnx";
  fp32.output = dir / "fp32.engine";
  CpuBuilder().build(fp32);
  // int8 weights: a quarter of the float ones, so the Q/DQ engine is the smaller file.
  EXPECT_LT(fs::file_size(req.output), fs::file_size(fp32.output));

  EngineFile ef = read_engine_file(req.output);
  EXPECT_EQ(ef.header.precision, "int8");
  // Both weights are stored once, as packed int8 codes: neither as float32 nor as an initializer.
  for (const auto& [name, t] : ef.model.graph.initializers) EXPECT_LT(t.numel(), 240) << name << " stored whole";
  ASSERT_EQ(ef.packed_states.size(), 2U);
  for (const auto& [key, state] : ef.packed_states) {
    EXPECT_NE(state.layout.find("int8"), std::string::npos) << key << ": " << state.layout;
    EXPECT_EQ(state.blobs.at(0).dtype(), core::DType::kInt8) << key;
  }
  runtime::Session from_onnx = runtime::Session::load(req.qdq);
  runtime::Session from_engine = engine_session(std::move(ef), req.output);
  const core::Tensor x = mlp_input();
  EXPECT_TRUE(bit_equal(from_onnx.run({{"x", x}}).at("y"), from_engine.run({{"x", x}}).at("y")));
  fs::remove_all(dir);
}

TEST(CpuBuilder, EngineWhosePackedStateNoLongerFitsIsRefusedNamingTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("detrq_cpu_builder_stale_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  onnx::save_model(mlp(false), dir / "m.onnx");
  BuildRequest req;
  req.onnx = dir / "m.onnx";
  req.output = dir / "m.engine";
  CpuBuilder().build(req);
  // As if written by a detrq whose panels were 8 wide: rewrite the engine with the layout changed.
  EngineFile ef = read_engine_file(req.output);
  auto states = ef.packed_states;
  states.at("h").layout = "sgemm-b-panels/1 f32 kc=256 nr=8";
  write_engine_file(ef.model, states, ef.header, dir / "stale.engine");
  try {
    engine_session(read_engine_file(dir / "stale.engine"), dir / "stale.engine");
    FAIL() << "a stale packed layout was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(e.where().find("stale.engine"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nr=8"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("build-engine"), std::string::npos) << e.hint();
  }
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
