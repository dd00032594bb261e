// The CPU engine file: a graph, weights and packed kernel states survive the round trip in place (viewing
// the mapping), and a damaged file, a version 1 file, or one built for CPU features this machine lacks is
// refused with a clear error.
#include "detrq/engine/cpu/engine_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "detrq/core/error.h"

namespace detrq::engine::cpu {
namespace {

namespace fs = std::filesystem;

onnx::Model small_model() {
  onnx::Model m;
  m.ir_version = 8;
  m.producer_name = "test";
  m.opset_imports[""] = 17;
  m.metadata["class_names"] = R"({"1": "circle"})";
  onnx::Graph& g = m.graph;
  g.name = "g";
  g.inputs.push_back({"x", core::DType::kFloat32, {1, 3}, true});
  g.outputs.push_back({"y", core::DType::kFloat32, {1, 3}, true});
  g.initializers["w"] = core::Tensor::from_vector<float>({1, 3}, {1.5F, -2.0F, 3.25F});
  g.initializers["q"] = core::Tensor::from_vector<int8_t>({5}, {-128, -1, 0, 1, 127});
  onnx::Node add;
  add.name = "add0";
  add.op_type = "Add";
  add.inputs = {"x", "w"};
  add.outputs = {"y"};
  onnx::Attribute t;
  t.kind = onnx::Attribute::Kind::kTensor;
  t.t = core::Tensor::from_vector<int64_t>({2}, {7, 9});
  add.attributes["value"] = t;
  onnx::Attribute ints;
  ints.kind = onnx::Attribute::Kind::kInts;
  ints.ints = {1, 2, 3};
  add.attributes["perm"] = ints;
  g.nodes.push_back(add);
  return m;
}

EngineHeader header(std::vector<std::string> features) {
  EngineHeader h;
  h.detrq_version = "test";
  h.cpu_features = std::move(features);
  h.built_on_features = host_cpu_features();
  h.source_name = "small.onnx";
  h.source_sha256 = std::string(64, '0');
  h.precision = "float32";
  h.arena_bytes = 4096;
  return h;
}

class EngineFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("detrq_engine_" + std::to_string(::getpid()) + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(EngineFileTest, RoundTripViewsTheMapping) {
  write_engine_file(small_model(), {}, header(host_cpu_features()), dir_ / "m.engine");
  EXPECT_TRUE(is_engine_file(dir_ / "m.engine"));
  EngineFile ef = read_engine_file(dir_ / "m.engine");
  EXPECT_EQ(ef.header.source_name, "small.onnx");
  EXPECT_EQ(ef.header.arena_bytes, 4096U);
  EXPECT_EQ(ef.header.node_count, 1U);
  EXPECT_EQ(ef.header.cpu_features, host_cpu_features());
  const onnx::Model& m = ef.model;
  EXPECT_EQ(m.metadata.at("class_names"), R"({"1": "circle"})");
  EXPECT_EQ(m.opset_imports.at(""), 17);
  ASSERT_EQ(m.graph.nodes.size(), 1U);
  const auto& n = m.graph.nodes[0];
  EXPECT_EQ(n.op_type, "Add");
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w"}));
  EXPECT_EQ(n.attributes.at("perm").ints, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(n.attributes.at("value").t.data<int64_t>()[1], 9);
  const core::Tensor& w = m.graph.initializers.at("w");
  EXPECT_EQ(w.shape(), (core::Shape{1, 3}));
  EXPECT_FLOAT_EQ(w.data<float>()[2], 3.25F);
  EXPECT_EQ(m.graph.initializers.at("q").data<int8_t>()[0], -128);
  // In place: the weights point into the mapping, 64-byte aligned.
  const auto* base = ef.mapping->data();
  const auto* p = static_cast<const std::byte*>(w.raw_data());
  EXPECT_TRUE(p >= base && p < base + ef.mapping->size());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0U);
  EXPECT_EQ(m.graph.inputs[0].shape, (core::Shape{1, 3}));
}

std::map<std::string, runtime::PackedState> states(const std::string& layout) {
  std::vector<float> panel(37);
  for (std::size_t i = 0; i < panel.size(); ++i) panel[i] = 0.5F * static_cast<float>(i) - 3.0F;
  return {{"y", runtime::PackedState{layout, {core::Tensor::from_vector<float>({37}, panel),
                                             core::Tensor::from_vector<int8_t>({3}, {-7, 0, 7})},
                                     {}}}};
}

TEST_F(EngineFileTest, PackedStatesRoundTripInPlace) {
  write_engine_file(small_model(), states("test-panels/1 kc=4"), header({}), dir_ / "m.engine");
  EngineFile ef = read_engine_file(dir_ / "m.engine");
  EXPECT_EQ(ef.header.packed_state_count, 1U);
  EXPECT_EQ(ef.header.packed_bytes, 37 * 4 + 3U);
  ASSERT_EQ(ef.packed_states.count("y"), 1U);
  const runtime::PackedState& st = ef.packed_states.at("y");
  EXPECT_EQ(st.layout, "test-panels/1 kc=4");
  ASSERT_EQ(st.blobs.size(), 2U);
  EXPECT_EQ(st.blobs[0].shape(), (core::Shape{37}));
  EXPECT_FLOAT_EQ(st.blobs[0].data<float>()[36], 15.0F);
  EXPECT_EQ(st.blobs[1].data<int8_t>()[0], -7);
  for (const auto& b : st.blobs) {
    const auto* p = static_cast<const std::byte*>(b.raw_data());
    EXPECT_TRUE(p >= ef.mapping->data() && p < ef.mapping->data() + ef.mapping->size());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0U);
  }
  // A packed state is part of the payload checksum: flip a byte of the int8 blob (the file's last bytes).
  std::string bytes;
  {
    std::ifstream in(dir_ / "m.engine", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() - 1] ^= 0x01;
  std::ofstream(dir_ / "flipped.engine", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_THROW(read_engine_file(dir_ / "flipped.engine"), Error);
}

TEST_F(EngineFileTest, RefusesPackedStatesForAnIsaThisCpuLacks) {
  write_engine_file(small_model(), states("q8-panels/1 isa=avx512vnni kc=4"), header({}), dir_ / "m.engine");
  try {
    read_engine_file(dir_ / "m.engine", {"avx2", "fma"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    // The writer put what the state's layout names into the header's requirement: refused there.
    EXPECT_NE(std::string(e.what()).find("CPU features this CPU lacks: avx512vnni"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(read_engine_file(dir_ / "m.engine", {"avx2", "avx512vnni"}));
}

TEST_F(EngineFileTest, RefusesVersionOneWithAHintToRebuild) {
  write_engine_file(small_model(), {}, header({}), dir_ / "m.engine");
  std::string bytes;
  {
    std::ifstream in(dir_ / "m.engine", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(bytes[8], static_cast<char>(kEngineFormatVersion));
  bytes[8] = 1;
  std::ofstream(dir_ / "v1.engine", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  try {
    read_engine_file(dir_ / "v1.engine");
    FAIL() << "a version 1 engine was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("version 1"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("build-engine"), std::string::npos) << e.hint();
  }
}

TEST_F(EngineFileTest, RefusesMissingCpuFeaturesNamingThem) {
  write_engine_file(small_model(), {}, header({"avx2", "avx512vnni"}), dir_ / "m.engine");
  try {
    read_engine_file(dir_ / "m.engine", {"sse4.2", "avx2"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_EQ(e.where(), (dir_ / "m.engine").string());
    EXPECT_NE(std::string(e.what()).find("avx512vnni"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("--cpu-features"), std::string::npos);
  }
  EXPECT_NO_THROW(read_engine_file(dir_ / "m.engine", {"avx2", "avx512vnni"}));
}

// Each packed state records the CPU features its layout needs; the header requires at least their union,
// and a state is refused where they are missing, naming it and them.
TEST_F(EngineFileTest, PackedStatesRecordTheFeaturesTheyNeed) {
  auto st = states("test-int8/1 isa=avx512vnni");
  using F = runtime::CpuFeature;
  st.at("y").isa = runtime::CpuTarget{F::kAvx512f, F::kAvx512bw, F::kAvx512vnni};
  write_engine_file(small_model(), st, header({"avx2"}), dir_ / "m.engine");
  EXPECT_EQ(read_engine_header(dir_ / "m.engine").cpu_features,
            (std::vector<std::string>{"avx2", "avx512f", "avx512bw", "avx512vnni"}));
  const std::vector<std::string> enough = {"avx2", "avx512f", "avx512bw", "avx512vnni"};
  EXPECT_EQ(read_engine_file(dir_ / "m.engine", enough).packed_states.at("y").isa, st.at("y").isa);
  // A header given less than its states need is completed by the writer.
  write_engine_file(small_model(), st, header({}), dir_ / "m2.engine");
  EXPECT_EQ(read_engine_header(dir_ / "m2.engine").cpu_features,
            (std::vector<std::string>{"avx512f", "avx512bw", "avx512vnni"}));
  try {
    read_engine_file(dir_ / "m.engine", {"avx2", "avx512f"});
    FAIL() << "an engine needing avx512vnni loaded without it";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("avx512bw, avx512vnni"), std::string::npos) << e.what();
  }
}

TEST_F(EngineFileTest, RefusesEveryKindOfDamage) {
  const fs::path good = dir_ / "m.engine";
  write_engine_file(small_model(), {}, header({}), good);
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto variant = [&](const std::string& name, std::string content) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    return p;
  };
  std::string flipped_weight = bytes;
  flipped_weight[bytes.size() - 3] ^= 0x10;
  std::string flipped_header = bytes;
  flipped_header[80] ^= 0x01;
  std::string other_version = bytes;
  other_version[8] = 99;
  for (const auto& [name, content] : std::vector<std::pair<std::string, std::string>>{
           {"truncated.engine", bytes.substr(0, bytes.size() - 5)},
           {"tiny.engine", bytes.substr(0, 10)},
           {"weight.engine", flipped_weight},
           {"header.engine", flipped_header},
           {"version.engine", other_version},
           {"onnx.engine", "\x08\x08\x12\x04test" + std::string(100, 'x')},
           {"empty.engine", ""}}) {
    const fs::path p = variant(name, content);
    try {
      read_engine_file(p, host_cpu_features());
      ADD_FAILURE() << name << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << name << ": " << e.what();
      EXPECT_EQ(e.where(), p.string());
    }
  }
  EXPECT_FALSE(is_engine_file(dir_ / "onnx.engine"));
  EXPECT_THROW(read_engine_file(dir_ / "absent.engine"), Error);
}

TEST(CpuFeatures, ParseAndCompare) {
  EXPECT_EQ(parse_cpu_features("avx2, fma"), (std::vector<std::string>{"avx2", "fma"}));
  EXPECT_EQ(parse_cpu_features("none"), std::vector<std::string>{});
  EXPECT_EQ(parse_cpu_features("host"), host_cpu_features());
  EXPECT_THROW(parse_cpu_features("avx9000"), Error);
  EXPECT_EQ(missing_cpu_features({"avx2", "fma", "avx512f"}, {"fma"}), (std::vector<std::string>{"avx2", "avx512f"}));
}

}  // namespace
}  // namespace detrq::engine::cpu
