// The runtime's packed-state hook, which engine files rest on: MatMul and Gemm hand out their packed
// weights, a second Session restores them bit-identically from a model that no longer holds those
// weights, released weights are really freed, and states that do not fit are refused by name.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "detrq/core/error.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace detrq::runtime {
namespace {

using core::DType;
using core::Tensor;

onnx::Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  onnx::Node n;
  n.name = op + "_" + out[0];
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

Tensor pseudo_random(core::Shape shape, uint32_t seed) {
  Tensor t = Tensor::empty(DType::kFloat32, std::move(shape));
  uint32_t s = seed;
  for (float& v : t.span<float>()) {
    s = s * 1664525U + 1013904223U;
    v = static_cast<float>(static_cast<int32_t>(s >> 8) % 2001 - 1000) / 997.0F;
  }
  return t;
}

// x [3,37] -> MatMul(W1 [37,40]) -> Gemm(W2 [21,40], transB, bias) -> y [3,21]; W1 is also read by
// nothing else, W2 by nothing else, so both can be released. Sizes are not multiples of the panel
// width, so padding is part of what round-trips.
onnx::Model two_layer() {
  onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.name = "two_layer";
  g.inputs.push_back({"x", DType::kFloat32, {3, 37}, true});
  g.outputs.push_back({"y", DType::kFloat32, {3, 21}, true});
  g.initializers["W1"] = pseudo_random({37, 40}, 1);
  g.initializers["W2"] = pseudo_random({21, 40}, 2);
  g.initializers["B2"] = pseudo_random({21}, 3);
  onnx::Node gemm = node("Gemm", {"h", "W2", "B2"}, {"y"});
  onnx::Attribute t;
  t.kind = onnx::Attribute::Kind::kInt;
  t.i = 1;
  gemm.attributes["transB"] = t;
  g.nodes = {node("MatMul", {"x", "W1"}, {"h"}), gemm};
  return m;
}

SessionOptions options() {
  SessionOptions o;
  o.threads = 2;
  return o;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

TEST(PackedState, KernelsHandOutTheirPackedWeightsAndReleaseTheOriginals) {
  Session s(two_layer(), options());
  const auto states = s.packed_states();
  ASSERT_EQ(states.size(), 2u);
  ASSERT_TRUE(states.count("h") && states.count("y"));
  EXPECT_NE(states.at("h").layout.find("kc="), std::string::npos);
  // Packed panels are padded to 16 columns: 37 x 48 and 40 x 32 floats.
  EXPECT_EQ(states.at("h").blobs.at(0).numel(), 37 * 48);
  EXPECT_EQ(states.at("y").blobs.at(0).numel(), 40 * 32);
  // W1 and W2 are read by nobody but their packing kernels: gone from the plan, typed in value_info.
  const onnx::Graph& g = s.model().graph;
  EXPECT_EQ(g.initializers.count("W1"), 0u);
  EXPECT_EQ(g.initializers.count("W2"), 0u);
  EXPECT_EQ(g.initializers.count("B2"), 1u);  // Gemm still reads its bias
  ASSERT_EQ(g.value_info.count("W1"), 1u);
  EXPECT_EQ(g.value_info.at("W1").shape, (core::Shape{37, 40}));
  EXPECT_EQ(g.value_info.at("W2").dtype, DType::kFloat32);
  EXPECT_EQ(s.weight_bytes(), 21 * sizeof(float));
  EXPECT_EQ(s.packed_bytes(), (37 * 48 + 40 * 32) * sizeof(float));
}

TEST(PackedState, ReleasedWeightIsFreed) {
  // W1's storage is kept alive by a handle the test watches: once packed, nothing may hold it.
  Tensor storage = pseudo_random({37, 40}, 1);
  auto owner = std::make_shared<Tensor>(storage);
  std::weak_ptr<Tensor> watch = owner;
  onnx::Model m = two_layer();
  m.graph.initializers["W1"] = Tensor::view(DType::kFloat32, {37, 40}, storage.raw_data(), std::move(owner));
  Session s(std::move(m), options());
  EXPECT_TRUE(watch.expired()) << "the session still holds W1 after packing it";
}

TEST(PackedState, RestoredSessionIsBitIdenticalWithoutTheWeights) {
  Session first(two_layer(), options());
  const Tensor x = pseudo_random({3, 37}, 7);
  const Tensor want = first.run({{"x", x}}).at("y");

  // Deep copies of the states, as an engine file would hand back.
  SessionOptions restore = options();
  for (const auto& [key, state] : first.packed_states()) {
    PackedState copy{state.layout, {}};
    for (const Tensor& b : state.blobs) copy.blobs.push_back(b.clone());
    restore.packed_states[key] = std::move(copy);
  }
  onnx::Model plan = first.model();
  ASSERT_EQ(plan.graph.initializers.count("W1"), 0u);
  Session second(std::move(plan), restore);
  EXPECT_TRUE(bit_equal(second.run({{"x", x}}).at("y"), want));
  EXPECT_EQ(second.packed_states().size(), 2u);
}

TEST(PackedState, StateThatDoesNotFitIsRefusedNamingTheNode) {
  Session first(two_layer(), options());
  SessionOptions restore = options();
  restore.packed_states = first.packed_states();
  restore.packed_states["h"].layout = "sgemm-b-panels/0 f32 kc=128 nr=8";
  try {
    Session second(first.model(), restore);
    FAIL() << "a foreign layout was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("MatMul"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("kc=128"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rebuild"), std::string::npos) << e.what();
  }
  // A blob of the wrong size.
  restore.packed_states = first.packed_states();
  restore.packed_states["y"].blobs[0] = Tensor::zeros(DType::kFloat32, {10});
  EXPECT_THROW(Session(first.model(), restore), Error);
}

TEST(PackedState, MissingWeightWithoutStateIsRefusedNamingTheWeight) {
  Session first(two_layer(), options());
  SessionOptions restore = options();
  restore.packed_states = first.packed_states();
  restore.packed_states.erase("h");
  // W2's state is kept so the placeholder mechanism is active; W1 has none.
  try {
    Session second(first.model(), restore);
    FAIL() << "a model without W1 and without its packed state was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("W1"), std::string::npos) << e.what();
  }
}

TEST(PackedState, Int8WeightsStayInt8AndRestoreBitIdentical) {
  // x [2,8] -> MatMul(W = DequantizeLinear(Wq int8 [8,20], per column)) -> Add(V = DequantizeLinear(Vq
  // int8 [20], per tensor)) -> y. MatMul packs W: its state can hold the int8 codes. Add reads V: V stays
  // as its int8 weight and DequantizeLinear.
  onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.inputs.push_back({"x", DType::kFloat32, {2, 8}, true});
  g.outputs.push_back({"y", DType::kFloat32, {2, 20}, true});
  std::vector<int8_t> q(8 * 20);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);
  std::vector<float> scale(20);
  std::vector<int8_t> zero(20);
  for (std::size_t i = 0; i < scale.size(); ++i) {
    scale[i] = 0.01F * static_cast<float>(i + 1) / 3.0F;
    zero[i] = static_cast<int8_t>(static_cast<int>(i % 5) - 2);
  }
  g.initializers["Wq"] = Tensor::from_vector<int8_t>({8, 20}, q);
  g.initializers["Ws"] = Tensor::from_vector<float>({20}, scale);
  g.initializers["Wz"] = Tensor::from_vector<int8_t>({20}, zero);
  g.initializers["Vq"] = Tensor::from_vector<int8_t>({20}, std::vector<int8_t>(q.begin(), q.begin() + 20));
  g.initializers["Vs"] = Tensor::scalar<float>(0.125F);
  onnx::Node dq = node("DequantizeLinear", {"Wq", "Ws", "Wz"}, {"W"});
  onnx::Attribute axis;
  axis.kind = onnx::Attribute::Kind::kInt;
  axis.i = 1;
  dq.attributes["axis"] = axis;
  g.nodes = {dq, node("DequantizeLinear", {"Vq", "Vs"}, {"V"}), node("MatMul", {"x", "W"}, {"h"}),
             node("Add", {"h", "V"}, {"y"})};
  const Tensor x = pseudo_random({2, 8}, 5);

  Session plain(m, options());
  EXPECT_EQ(plain.model().graph.nodes.size(), 2u);  // both DequantizeLinear folded
  EXPECT_EQ(plain.packed_states().at("h").blobs.at(0).dtype(), DType::kFloat32);
  SessionOptions keep = options();
  keep.keep_int8_weights = true;
  Session built(m, keep);
  const onnx::Graph& bg = built.model().graph;
  std::vector<std::string> ops;
  for (const auto& n : bg.nodes) ops.push_back(n.op_type);
  EXPECT_EQ(ops, (std::vector<std::string>{"DequantizeLinear", "MatMul", "Add"}));
  ASSERT_EQ(bg.initializers.count("Vq"), 1u);
  EXPECT_EQ(bg.initializers.at("Vq").dtype(), DType::kInt8);
  EXPECT_EQ(bg.initializers.count("V"), 0u);
  EXPECT_EQ(bg.initializers.count("Wq"), 0u);  // in the packed state instead
  EXPECT_EQ(bg.initializers.count("W"), 0u);
  const auto states = built.packed_states();
  ASSERT_EQ(states.count("h"), 1u);
  EXPECT_NE(states.at("h").layout.find("int8"), std::string::npos) << states.at("h").layout;
  ASSERT_EQ(states.at("h").blobs.size(), 3u);
  EXPECT_EQ(states.at("h").blobs[0].dtype(), DType::kInt8);
  EXPECT_EQ(states.at("h").blobs[0].numel(), 8 * 32);

  // Loading the plan with the int8 state: V's DequantizeLinear folds again, W is dequantized while
  // unpacking, and every variant computes the same bits.
  SessionOptions restore = options();
  restore.packed_states = states;
  Session loaded(built.model(), restore);
  EXPECT_EQ(loaded.model().graph.nodes.size(), 2u);
  const Tensor want = plain.run({{"x", x}}).at("y");
  EXPECT_TRUE(bit_equal(built.run({{"x", x}}).at("y"), want));
  EXPECT_TRUE(bit_equal(loaded.run({{"x", x}}).at("y"), want));
  // The restored float panels are exactly those packed from the dequantized floats.
  const Tensor a = plain.packed_states().at("h").blobs[0], b = loaded.packed_states().at("h").blobs[0];
  EXPECT_TRUE(bit_equal(a, b));
}

}  // namespace
}  // namespace detrq::runtime
