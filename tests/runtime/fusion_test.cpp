// Operator fusion (src/runtime/passes/fuse_matmul_epilogue.cpp, fuse_attention.cpp): MatMul + bias Add (+ GELU) becomes one FusedMatMul whose
// outputs equal the unfused graph's, and fusion leaves alone every tensor something else must see.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "detrq/runtime/session.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime {
namespace {
using core::DType;
using core::Tensor;
using onnx::Model;
using onnx::Node;

Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.op_type = op;
  n.name = out.at(0) + "_node";
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// Runs the one pass `name` over `m` (checking the graph after it) and returns how many nodes it wrote.
std::size_t run_pass(Model& m, const char* name, const std::set<std::string>& keep) {
  passes::PassOptions options;
  options.keep = keep;
  options.validate = true;
  return passes::run_passes(m, options, {passes::find_pass(name)}).at(0).rewritten;
}

Tensor random(core::Shape shape, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0F, 1.0F);
  std::vector<float> v(static_cast<std::size_t>(core::shape_numel(shape)));
  for (float& x : v) x = d(gen);
  return Tensor::from_vector<float>(std::move(shape), v);
}

// x[2,37,24] -> MatMul(W[24,40]) -> Add(b via Identity, as torch exports shared weights) -> GELU
// spelled Div/Erf/Add/Mul/Mul -> y; then a second MatMul + bias without activation -> z.
Model mlp(std::vector<std::string> outputs = {"z"}) {
  Model m;
  m.opset_imports[""] = 17;
  m.graph.name = "mlp";
  m.graph.inputs.push_back({"x", DType::kFloat32, {2, 37, 24}, true});
  for (const auto& o : outputs) m.graph.outputs.push_back({o, DType::kUndefined, {}, false});
  auto& init = m.graph.initializers;
  init["w1"] = random({24, 40}, 1);
  init["b1"] = random({40}, 2);
  init["w2"] = random({40, 8}, 3);
  init["b2"] = random({8}, 4);
  init["sqrt2"] = Tensor::scalar<float>(1.4142135F);
  init["one"] = Tensor::scalar<float>(1.0F);
  init["half"] = Tensor::scalar<float>(0.5F);
  m.graph.nodes = {node("Identity", {"b1"}, {"b1_shared"}),
                   node("MatMul", {"x", "w1"}, {"p"}),
                   node("Add", {"b1_shared", "p"}, {"h"}),
                   node("Div", {"h", "sqrt2"}, {"d"}),
                   node("Erf", {"d"}, {"e"}),
                   node("Add", {"e", "one"}, {"e1"}),
                   node("Mul", {"h", "e1"}, {"g"}),
                   node("Mul", {"g", "half"}, {"y"}),
                   node("MatMul", {"y", "w2"}, {"q"}),
                   node("Add", {"q", "b2"}, {"z"})};
  return m;
}

std::size_t count_op(const Model& m, const std::string& op) {
  std::size_t n = 0;
  for (const auto& node : m.graph.nodes) n += node.op_type == op;
  return n;
}

float max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float d = 0.0F;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  return d;
}

// On the host's target and narrowed to AVX2 and to portable code (where the fused GELU and the
// elementwise one must agree on fusing their multiply-adds or not).
TEST(Fusion, FusedGraphMatchesTheUnfusedOne) {
  using runtime::CpuFeature;
  using runtime::CpuTarget;
  for (const CpuTarget& target : {CpuTarget::host(), CpuTarget::host().intersected({CpuFeature::kAvx2, CpuFeature::kFma}),
                                  CpuTarget{}}) {
    SCOPED_TRACE("target " + target.to_string());
    SessionOptions plain;
    plain.fuse_operators = false;
    plain.target = target;
    SessionOptions fusing;
    fusing.target = target;
    Session reference(mlp(), plain);
    Session fused(mlp(), fusing);
    EXPECT_EQ(count_op(reference.model(), "FusedMatMul"), 0u);
    EXPECT_EQ(count_op(fused.model(), "FusedMatMul"), 2u);
    EXPECT_EQ(count_op(fused.model(), "Erf"), 0u);
    EXPECT_EQ(count_op(fused.model(), "Add"), 0u);
    EXPECT_EQ(fused.model().opset("com.detrq"), 1);
    const Tensor x = random({2, 37, 24}, 9);
    const Tensor want = reference.run({{"x", x}}).at("z");
    const Tensor got = fused.run({{"x", x}}).at("z");
    EXPECT_LT(max_diff(want, got), 1e-4F);
  }
}

TEST(Fusion, KeepsTensorsThatAreObservedOrOutputsOrSharedWithOtherReaders) {
  // An observed tensor inside the GELU: bias is fused, the activation is not.
  Model m = mlp();
  std::set<std::string> keep{"e"};
  EXPECT_EQ(run_pass(m, "fuse-matmul-epilogue", keep), 2u);
  EXPECT_EQ(count_op(m, "Erf"), 1u);
  // The first product (p) as a graph output: its MatMul stays as it is; the second still fuses.
  Model m2 = mlp({"z", "p"});
  EXPECT_EQ(run_pass(m2, "fuse-matmul-epilogue", {}), 1u);
  EXPECT_EQ(count_op(m2, "MatMul"), 1u);
  // A bias that is not a 1-D constant of N values is not fused.
  Model m3 = mlp();
  m3.graph.initializers["b2"] = random({1, 8}, 5);
  EXPECT_EQ(run_pass(m3, "fuse-matmul-epilogue", {}), 1u);
  // And the observer of an unfused session sees every tensor.
  SessionOptions watch;
  watch.keep_tensors = {"h", "e"};
  Session s(mlp(), watch);
  struct Names : Observer {
    std::set<std::string> seen;
    void on_tensor(const std::string& name, const Tensor&) override { seen.insert(name); }
  } names;
  s.run({{"x", random({2, 37, 24}, 9)}}, &names);
  EXPECT_TRUE(names.seen.count("h"));
  EXPECT_TRUE(names.seen.count("e"));
}

// A transformer block's end: h = x + LayerScale(MatMul(x, W) + b), with the residual x [2, 37, 24];
// optionally without the scale, and with a residual that broadcasts the product to a larger output
// (r [3, 2, 37, 24]: added in a pass after the product, the output has r's shape).
Model residual_block(bool with_scale, bool broadcast) {
  Model m;
  m.opset_imports[""] = 17;
  m.graph.name = "residual";
  m.graph.inputs.push_back({"x", DType::kFloat32, {2, 37, 24}, true});
  if (broadcast) m.graph.inputs.push_back({"r", DType::kFloat32, {3, 2, 37, 24}, true});
  m.graph.outputs.push_back({"y", DType::kUndefined, {}, false});
  auto& init = m.graph.initializers;
  init["w"] = random({24, 24}, 21);
  init["b"] = random({24}, 22);
  init["gamma"] = random({24}, 23);
  m.graph.nodes = {node("MatMul", {"x", "w"}, {"p"}), node("Add", {"p", "b"}, {"h"})};
  if (with_scale) m.graph.nodes.push_back(node("Mul", {"gamma", "h"}, {"hs"}));
  m.graph.nodes.push_back(node("Add", {broadcast ? "r" : "x", with_scale ? "hs" : "h"}, {"y"}));
  return m;
}

TEST(Fusion, LayerScaleAndResidualGoIntoTheEpilogue) {
  for (bool with_scale : {true, false}) {
    for (bool broadcast : {false, true}) {
      SessionOptions plain;
      plain.fuse_operators = false;
      Session reference(residual_block(with_scale, broadcast), plain);
      Session fused(residual_block(with_scale, broadcast), SessionOptions{});
      EXPECT_EQ(count_op(fused.model(), "FusedMatMul"), 1u);
      EXPECT_EQ(count_op(fused.model(), "Add") + count_op(fused.model(), "Mul"), 0u);
      std::map<std::string, Tensor> feeds{{"x", random({2, 37, 24}, 24)}};
      if (broadcast) feeds["r"] = random({3, 2, 37, 24}, 25);
      const Tensor want = reference.run(feeds).at("y");
      const Tensor got = fused.run(feeds).at("y");
      EXPECT_EQ(got.shape(), want.shape());
      EXPECT_LT(max_diff(want, got), 1e-5F) << "scale " << with_scale << " broadcast " << broadcast;
    }
  }
  // A constant second addend is not a residual (a second bias stays an Add); a scale that is not a
  // constant [N] stays a Mul, and the Add after it then is not absorbed either.
  Model constant = residual_block(false, false);
  constant.graph.initializers["x2"] = random({24}, 26);
  constant.graph.nodes.back().inputs[0] = "x2";
  EXPECT_EQ(run_pass(constant, "fuse-matmul-epilogue", {}), 1u);
  EXPECT_EQ(count_op(constant, "Add"), 1u);
  Model scalar = residual_block(true, false);
  scalar.graph.initializers["gamma"] = Tensor::scalar<float>(0.5F);
  EXPECT_EQ(run_pass(scalar, "fuse-matmul-epilogue", {}), 1u);
  EXPECT_EQ(count_op(scalar, "Mul"), 1u);
  EXPECT_EQ(count_op(scalar, "Add"), 1u);
}

// softmax(Q K) V as exports spell it: Q, K and V are Transposes of projections laid out [batch, tokens,
// heads, dims], Q scaled by a Mul; 70 rows (not a multiple of the kernel's blocks). K either computed
// per batch entry or shared by the entries of the first axis (numpy broadcasting).
Node transpose(const std::string& in, const std::string& out, std::vector<int64_t> perm) {
  Node n = node("Transpose", {in}, {out});
  n.attributes["perm"].kind = onnx::Attribute::Kind::kInts;
  n.attributes["perm"].ints = std::move(perm);
  return n;
}

Model attention(bool shared_k, std::vector<int64_t> out_perm = {}) {
  Model m;
  m.opset_imports[""] = 17;
  m.graph.name = "attention";
  m.graph.inputs.push_back({"x", DType::kFloat32, {2, 70, 3, 16}, true});
  m.graph.outputs.push_back({"y", DType::kUndefined, {}, false});
  auto& init = m.graph.initializers;
  init["c"] = Tensor::scalar<float>(0.3F);
  init["wv"] = random({16, 24}, 8);
  m.graph.nodes = {transpose("x", "q0", {0, 2, 1, 3}), node("Mul", {"q0", "c"}, {"q"})};  // Q [2, 3, 70, 16]
  if (shared_k) {
    init["wk"] = random({3, 16, 70}, 7);
    m.graph.nodes.push_back(node("Sigmoid", {"wk"}, {"k"}));  // K [3, 16, 70]
  } else {
    init["wk"] = random({16, 16}, 7);
    m.graph.nodes.push_back(transpose("x", "xh", {0, 2, 1, 3}));
    m.graph.nodes.push_back(node("MatMul", {"xh", "wk"}, {"kk"}));
    m.graph.nodes.push_back(transpose("kk", "k", {0, 1, 3, 2}));  // K [2, 3, 16, 70]
  }
  m.graph.nodes.push_back(node("MatMul", {"x", "wv"}, {"vp"}));
  m.graph.nodes.push_back(transpose("vp", "v", {0, 2, 1, 3}));  // V [2, 3, 70, 24]
  m.graph.nodes.push_back(node("MatMul", {"q", "k"}, {"s"}));
  m.graph.nodes.push_back(node("Softmax", {"s"}, {"p"}));
  m.graph.nodes.push_back(node("MatMul", {"p", "v"}, {out_perm.empty() ? "y" : "y0"}));
  if (!out_perm.empty()) m.graph.nodes.push_back(transpose("y0", "y", out_perm));  // heads back beside tokens
  return m;
}

TEST(Fusion, AttentionMatchesTheUnfusedGraph) {
  for (bool shared_k : {false, true}) {
    SessionOptions plain;
    plain.fuse_operators = false;
    Session reference(attention(shared_k), plain);
    Session fused(attention(shared_k), SessionOptions{});
    EXPECT_EQ(count_op(fused.model(), "AttentionSoftmax"), 1u);
    EXPECT_EQ(count_op(fused.model(), "Softmax"), 0u);
    EXPECT_EQ(count_op(fused.model(), "Mul"), 0u);
    EXPECT_EQ(count_op(fused.model(), "Transpose"), shared_k ? 0u : 1u);  // what computes K's input stays
    const Tensor x = random({2, 70, 3, 16}, 11);
    const Tensor want = reference.run({{"x", x}}).at("y");
    const Tensor got = fused.run({{"x", x}}).at("y");
    // Relative to the output's size: scaling the product instead of Q rounds the scores differently,
    // and exp turns an absolute error of the scores into a relative one of the result.
    float peak = 0.0F;
    for (int64_t i = 0; i < want.numel(); ++i) peak = std::max(peak, std::abs(want.data<float>()[i]));
    EXPECT_LT(max_diff(want, got), 2e-5F * peak) << "largest output " << peak;
  }
  // The output Transpose that puts the heads back beside the tokens is written directly; one that
  // moves the last axis is not absorbed.
  for (const auto& perm : std::vector<std::vector<int64_t>>{{0, 2, 1, 3}, {2, 0, 1, 3}, {0, 1, 3, 2}}) {
    SessionOptions plain;
    plain.fuse_operators = false;
    Session reference(attention(false, perm), plain);
    Session fused(attention(false, perm), SessionOptions{});
    EXPECT_EQ(count_op(fused.model(), "AttentionSoftmax"), 1u);
    EXPECT_EQ(count_op(fused.model(), "Transpose"), perm.back() == 3 ? 1u : 2u) << perm[0] << perm[1];
    const Tensor x = random({2, 70, 3, 16}, 12);
    const Tensor want = reference.run({{"x", x}}).at("y");
    const Tensor got = fused.run({{"x", x}}).at("y");
    float peak = 0.0F;
    for (int64_t i = 0; i < want.numel(); ++i) peak = std::max(peak, std::abs(want.data<float>()[i]));
    EXPECT_LT(max_diff(want, got), 2e-5F * peak);
  }
  // An observed score tensor keeps the three nodes.
  Model m = attention(false);
  EXPECT_EQ(run_pass(m, "fuse-attention", {"p"}), 0u);
  // Softmax over another axis is not attention.
  Model other = attention(false);
  for (auto& n : other.graph.nodes) {
    if (n.op_type == "Softmax") {
      n.attributes["axis"].kind = onnx::Attribute::Kind::kInt;
      n.attributes["axis"].i = 2;
    }
  }
  EXPECT_EQ(run_pass(other, "fuse-attention", {}), 0u);
  // Before opset 13 Softmax's default axis is 1.
  Model old = attention(false);
  old.opset_imports[""] = 11;
  EXPECT_EQ(run_pass(old, "fuse-attention", {}), 0u);
}

}  // namespace
}  // namespace detrq::runtime
