// Session: planning, folding, aliasing, the arena, observers, profiling and every load/run error,
// on small graphs run with test-only kernels (session_test_ops.h).
#include <gtest/gtest.h>

#include <cmath>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_passes.h"
#include "detrq/runtime/session.h"
#include "runtime/session_test_ops.h"

namespace detrq::runtime {
namespace {
using core::DType;
using core::Tensor;
using onnx::Model;
using onnx::Node;

const KernelRegistry& registry() {
  static const KernelRegistry r = testing::test_registry();
  return r;
}

SessionOptions test_options() {
  SessionOptions o;
  o.registry = &registry();
  o.threads = 1;
  return o;
}

Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out, std::string name = {}) {
  Node n;
  n.op_type = op;
  n.name = std::move(name);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

Model model_with(std::vector<Node> nodes, core::Shape x_shape = {2, 3}, std::vector<std::string> outputs = {"y"}) {
  Model m;
  m.opset_imports[""] = 17;
  m.graph.name = "test";
  m.graph.inputs.push_back({"x", DType::kFloat32, std::move(x_shape), true});
  for (const auto& o : outputs) m.graph.outputs.push_back({o, DType::kUndefined, {}, false});
  m.graph.nodes = std::move(nodes);
  return m;
}

Tensor iota(core::Shape shape, float start = -2.5F) {
  std::vector<float> v(static_cast<std::size_t>(core::shape_numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<float>(i);
  return Tensor::from_vector<float>(std::move(shape), v);
}

std::string error_of(const std::function<void()>& fn, ErrorKind expected_kind) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), expected_kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return {};
}

TEST(Session, RunsAGraphAndReturnsOwnedOutputs) {
  Model m = model_with({node("Add", {"x", "w"}, {"s"}), node("Relu", {"s"}, {"y"})});
  m.graph.initializers["w"] = Tensor::from_vector<float>({2, 3}, {1, 1, 1, 1, 1, 1});
  Session s(std::move(m), test_options());
  ASSERT_EQ(s.outputs().size(), 1u);
  EXPECT_EQ(s.outputs()[0].dtype, DType::kFloat32);
  EXPECT_EQ(s.outputs()[0].shape, (core::Shape{2, 3}));
  auto out = s.run({{"x", iota({2, 3})}});
  const Tensor y = out.at("y");
  EXPECT_EQ(y.shape(), (core::Shape{2, 3}));
  const std::vector<float> want = {0, 0, 0.5F, 1.5F, 2.5F, 3.5F};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], want[i]);
  // A second run with another input overwrites nothing the first returned.
  auto out2 = s.run({{"x", iota({2, 3}, 10.0F)}});
  EXPECT_FLOAT_EQ(y.data<float>()[5], 3.5F);
  EXPECT_FLOAT_EQ(out2.at("y").data<float>()[5], 16.0F);
}

TEST(Session, FoldsConstantsAndShapeArithmetic) {
  // y = Reshape(Relu(x) * (a + b), Concat(Shape(x), [1]))  -- Add, Shape and Concat must fold away.
  Model m = model_with({node("Add", {"a", "b"}, {"ab"}), node("Relu", {"x"}, {"r"}), node("Mul", {"r", "ab"}, {"m"}),
                        node("Shape", {"x"}, {"shape"}), node("Concat", {"shape", "one"}, {"target"}),
                        node("Reshape", {"m", "target"}, {"y"})});
  m.graph.initializers["a"] = Tensor::scalar<float>(1.5F);
  m.graph.initializers["b"] = Tensor::scalar<float>(0.5F);
  m.graph.initializers["one"] = Tensor::from_vector<int64_t>({1}, {1});
  Session s(std::move(m), test_options());
  std::vector<std::string> ops;
  for (const auto& n : s.model().graph.nodes) ops.push_back(n.op_type);
  EXPECT_EQ(ops, (std::vector<std::string>{"Relu", "Mul", "Reshape"}));
  EXPECT_EQ(s.model().graph.initializers.count("ab"), 1u);
  EXPECT_EQ(s.model().graph.initializers.count("target"), 1u);
  EXPECT_EQ(s.model().graph.initializers.count("a"), 0u);  // only used by folded nodes
  EXPECT_EQ(s.outputs()[0].shape, (core::Shape{2, 3, 1}));
  auto y = s.run({{"x", iota({2, 3})}}).at("y");
  EXPECT_EQ(y.shape(), (core::Shape{2, 3, 1}));
  EXPECT_FLOAT_EQ(y.data<float>()[5], 5.0F);
  // Without folding the same graph still runs and agrees.
  SessionOptions no_fold = test_options();
  no_fold.fold_constants = false;
  Model m2 = model_with({node("Add", {"a", "b"}, {"ab"}), node("Relu", {"x"}, {"r"}), node("Mul", {"r", "ab"}, {"y"})});
  m2.graph.initializers["a"] = Tensor::scalar<float>(1.5F);
  m2.graph.initializers["b"] = Tensor::scalar<float>(0.5F);
  Session s2(std::move(m2), no_fold);
  EXPECT_EQ(s2.model().graph.nodes.size(), 3u);
  EXPECT_FLOAT_EQ(s2.run({{"x", iota({2, 3})}}).at("y").data<float>()[5], 5.0F);
}

struct Recorder : Observer {
  std::vector<std::string> names;
  std::map<std::string, const void*> data;
  std::map<std::string, std::vector<float>> values;
  void on_tensor(const std::string& name, const Tensor& t) override {
    names.push_back(name);
    data[name] = t.raw_data();
    if (t.dtype() == DType::kFloat32) values[name].assign(t.data<float>(), t.data<float>() + t.numel());
  }
};

TEST(Session, ReshapeAliasesItsInputAndObserverSeesEveryTensor) {
  Model m = model_with({node("Relu", {"x"}, {"r"}), node("Reshape", {"r", "shape"}, {"flat"}),
                        node("Relu", {"flat"}, {"y"}), node("Reshape", {"x", "shape"}, {"xflat"})},
                       {2, 3}, {"y", "xflat"});
  m.graph.initializers["shape"] = Tensor::from_vector<int64_t>({1}, {6});
  Session s(std::move(m), test_options());
  Recorder rec;
  const Tensor x = iota({2, 3});
  auto out = s.run({{"x", x}}, &rec);
  EXPECT_EQ(rec.names, (std::vector<std::string>{"r", "flat", "y", "xflat"}));
  EXPECT_EQ(rec.data.at("flat"), rec.data.at("r"));     // a view, not a copy
  EXPECT_EQ(rec.data.at("xflat"), x.raw_data());        // a view of the caller's input
  EXPECT_EQ(rec.values.at("flat"), rec.values.at("r"));
  EXPECT_EQ(out.at("xflat").shape(), (core::Shape{6}));
  EXPECT_NE(out.at("xflat").raw_data(), x.raw_data());  // outputs own their storage
  EXPECT_FLOAT_EQ(out.at("xflat").data<float>()[0], -2.5F);
}

TEST(Session, ArenaReusesMemoryAcrossLifetimes) {
  // A chain of five Relus over 1024 floats needs two live buffers at a time, not five.
  std::vector<Node> nodes;
  std::string prev = "x";
  for (int i = 0; i < 5; ++i) {
    const std::string out = i == 4 ? "y" : "r" + std::to_string(i);
    nodes.push_back(node("Relu", {prev}, {out}));
    prev = out;
  }
  Session s(model_with(nodes, {1024}), test_options());
  EXPECT_EQ(s.arena_bytes(), 2u * 4096u);
  EXPECT_EQ(s.planned_peak_bytes(), s.arena_bytes());  // no weights
  const Tensor x = iota({1024});
  auto y = s.run({{"x", x}}).at("y");
  for (int i = 0; i < 1024; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], std::max(0.0F, x.data<float>()[i]));
}

TEST(Session, RemovesDeadNodes) {
  Session s(model_with({node("Relu", {"x"}, {"y"}), node("Relu", {"x"}, {"unused"}), node("Relu", {"unused"}, {"u2"})}),
            test_options());
  EXPECT_EQ(s.model().graph.nodes.size(), 1u);
}

TEST(Session, ProfilesPerOperator) {
  Model m = model_with({node("Add", {"x", "w"}, {"s"}), node("Relu", {"s"}, {"t"}), node("Relu", {"t"}, {"y"})});
  m.graph.initializers["w"] = Tensor::scalar<float>(1.0F);
  Session s(std::move(m), test_options());
  s.run({{"x", iota({2, 3})}});
  EXPECT_TRUE(s.profile().empty());
  s.enable_profiling(true);
  s.run({{"x", iota({2, 3})}});
  s.run({{"x", iota({2, 3})}});
  auto prof = s.profile();
  ASSERT_EQ(prof.size(), 2u);
  std::map<std::string, int64_t> calls;
  for (const auto& p : prof) calls[p.op_type] = p.calls;  // times are not checked: tests never time anything
  EXPECT_EQ(calls["Relu"], 4);
  EXPECT_EQ(calls["Add"], 2);
}

TEST(SessionBadInput, UnsupportedOperatorsListedInOneError) {
  Model m = model_with({node("Frobnicate", {"x"}, {"a"}), node("Relu", {"a"}, {"b"}), node("Warp", {"b"}, {"c"}),
                        node("Frobnicate", {"c"}, {"d"}), node("Custom", {"d"}, {"y"})});
  m.graph.nodes.back().domain = "com.example";
  m.opset_imports["com.example"] = 1;
  const std::string msg = error_of([&] { Session(m, test_options()); }, ErrorKind::kUnsupported);
  EXPECT_NE(msg.find("3 unsupported operators"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Frobnicate (domain ai.onnx, opset 17)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Warp (domain ai.onnx, opset 17)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Custom (domain com.example, opset 1)"), std::string::npos) << msg;
}

TEST(SessionBadInput, Cycle) {
  Model m = model_with({node("Add", {"x", "b"}, {"a"}, "first"), node("Relu", {"a"}, {"b"}, "second"),
                        node("Relu", {"a"}, {"y"})});
  const std::string msg = error_of([&] { Session(m, test_options()); }, ErrorKind::kInvalidInput);
  EXPECT_NE(msg.find("cycle"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Add 'first'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Relu 'second'"), std::string::npos) << msg;
}

TEST(SessionBadInput, DanglingInput) {
  Model m = model_with({node("Add", {"x", "nowhere"}, {"y"}, "add")});
  const std::string msg = error_of([&] { Session(m, test_options()); }, ErrorKind::kInvalidInput);
  EXPECT_NE(msg.find("Add 'add'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'nowhere' is not produced by any node"), std::string::npos) << msg;
}

TEST(SessionBadInput, TwoProducersAndMissingOutput) {
  Model m = model_with({node("Relu", {"x"}, {"y"}, "a"), node("Relu", {"x"}, {"y"}, "b")});
  EXPECT_NE(error_of([&] { Session(m, test_options()); }, ErrorKind::kInvalidInput).find("also produces"),
            std::string::npos);
  Model m2 = model_with({node("Relu", {"x"}, {"z"})});
  EXPECT_NE(error_of([&] { Session(m2, test_options()); }, ErrorKind::kInvalidInput).find("graph output 'y'"),
            std::string::npos);
}

TEST(SessionBadInput, WrongInputsAtRun) {
  Session s(model_with({node("Relu", {"x"}, {"y"})}), test_options());
  std::string msg = error_of([&] { s.run({{"x", iota({3, 2})}}); }, ErrorKind::kInvalidInput);
  EXPECT_NE(msg.find("input 'x': has shape [3, 2], the model expects [2, 3]"), std::string::npos) << msg;
  msg = error_of([&] { s.run({{"x", Tensor::zeros(DType::kFloat64, {2, 3})}}); }, ErrorKind::kInvalidInput);
  EXPECT_NE(msg.find("input 'x': has dtype float64, the model expects float32"), std::string::npos) << msg;
  msg = error_of([&] { s.run({}); }, ErrorKind::kInvalidInput);
  EXPECT_NE(msg.find("input 'x': is missing"), std::string::npos) << msg;
  msg = error_of([&] { s.run({{"x", iota({2, 3})}, {"z", iota({2, 3})}}); }, ErrorKind::kInvalidInput);
  EXPECT_NE(msg.find("input 'z': is not an input of the model"), std::string::npos) << msg;
  // After all that, a good run still works.
  EXPECT_FLOAT_EQ(s.run({{"x", iota({2, 3})}}).at("y").data<float>()[5], 2.5F);
}

TEST(SessionBadInput, SymbolicInputShapeNeedsAStaticOne) {
  Model m = model_with({node("Relu", {"x"}, {"y"})}, {-1, 3});
  std::string msg = error_of([&] { Session(m, test_options()); }, ErrorKind::kUsage);
  EXPECT_NE(msg.find("has no static shape"), std::string::npos) << msg;
  SessionOptions o = test_options();
  o.input_shapes["x"] = {4, 3};
  Session s(m, o);
  EXPECT_EQ(s.inputs()[0].shape, (core::Shape{4, 3}));
  EXPECT_EQ(s.run({{"x", iota({4, 3})}}).at("y").shape(), (core::Shape{4, 3}));
  o.input_shapes["x"] = {4, 2};
  msg = error_of([&] { Session(m, o); }, ErrorKind::kUsage);
  EXPECT_NE(msg.find("does not fit the declared [-1, 3]"), std::string::npos) << msg;
}

TEST(SessionBadInput, KernelRejectsInputsAtLoad) {
  Model m = model_with({node("Add", {"x", "w"}, {"y"}, "add")});
  m.graph.initializers["w"] = Tensor::from_vector<float>({2}, {1, 2});
  const std::string msg = error_of([&] { Session(m, test_options()); }, ErrorKind::kInvalidInput);
  EXPECT_NE(msg.find("Add 'add'"), std::string::npos) << msg;
}

TEST(GraphPasses, ConstantNodesBecomeInitializers) {
  Model m = model_with({node("Constant", {}, {"c"}), node("Add", {"x", "c"}, {"y"})});
  onnx::Attribute v;
  v.kind = onnx::Attribute::Kind::kFloat;
  v.f = 2.0F;
  m.graph.nodes[0].attributes["value_float"] = v;
  onnx::constants_to_initializers(m.graph);
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  EXPECT_FLOAT_EQ(m.graph.initializers.at("c").data<float>()[0], 2.0F);
}

}  // namespace
}  // namespace detrq::runtime
