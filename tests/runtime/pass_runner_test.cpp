// The pass list (src/runtime/passes): a pass that breaks the graph is caught right after it, by name;
// reports add up to the node counts the runner measures; the Session reports every pass it ran.
#include <gtest/gtest.h>

#include <filesystem>

#include "detrq/core/error.h"
#include "detrq/runtime/session.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime {
namespace {
using onnx::Node;

Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.op_type = op;
  n.name = out.at(0) + "_node";
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

onnx::Model relu_model() {
  onnx::Model m;
  m.opset_imports[""] = 17;
  m.graph.inputs = {onnx::ValueInfo{"x", core::DType::kFloat32, {4}, true}};
  m.graph.outputs = {onnx::ValueInfo{"y", core::DType::kFloat32, {4}, true}};
  m.graph.nodes = {node("Relu", {"x"}, {"y"}), node("Neg", {"x"}, {"unused"})};
  return m;
}

passes::PassChanges dangle(passes::PassContext& ctx) {
  ctx.graph.append(node("Relu", {"nowhere"}, {"r"}));
  return {};
}

passes::PassChanges second_producer(passes::PassContext& ctx) {
  ctx.graph.append(node("Abs", {"x"}, {"y"}));
  return {};
}

TEST(PassRunner, ValidationNamesThePassThatBrokeTheGraph) {
  for (auto broken : {&dangle, &second_producer}) {
    onnx::Model m = relu_model();
    passes::PassOptions options;
    options.validate = true;
    const std::vector<passes::Pass> list = {passes::find_pass("remove-dead-nodes"),
                                            passes::Pass{"break-graph", passes::PassGate::kAlways, broken}};
    try {
      passes::run_passes(m, options, list);
      FAIL() << "the broken graph was not caught";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInternal);
      EXPECT_NE(std::string(e.what()).find("graph pass 'break-graph'"), std::string::npos) << e.what();
    }
  }
}

TEST(PassRunner, GatesFollowTheOptionsAndReportsMatchNodeCounts) {
  onnx::Model m = relu_model();
  passes::PassOptions options;
  options.fuse_qdq = false;
  options.fuse_operators = false;
  options.validate = true;
  const auto reports = passes::run_passes(m, options);
  std::vector<std::string> ran;
  for (const auto& r : reports) ran.push_back(r.pass);
  EXPECT_EQ(ran, (std::vector<std::string>{"check-internal-domain", "check-qdq-scales", "remove-dead-nodes",
                                           "remove-dead-nodes"}));
  EXPECT_EQ(reports.at(2).removed, 1u);
  EXPECT_EQ(reports.at(2).nodes_before, 2u);
  EXPECT_EQ(reports.at(2).nodes_after, 1u);
  EXPECT_THROW(passes::find_pass("no-such-pass"), Error);
}

// On the shipped trained model: every pass of the list runs, in order, checked after each (validate),
// and what each says it fused or removed is what the node count shows.
TEST(PassRunner, SessionReportsEveryPassOnTheShippedModel) {
  const std::filesystem::path model = std::filesystem::path(DETRQ_TEST_SOURCE_DIR) / "models" / "rfdetr_shapes.onnx";
  onnx::Model m = onnx::load_model(model);
  passes::PassOptions options;
  options.validate = true;
  const auto reports = passes::run_passes(m, options);
  ASSERT_EQ(reports.size(), passes::session_passes().size());
  std::size_t rewritten = 0;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const PassReport& r = reports[i];
    EXPECT_EQ(r.pass, passes::session_passes()[i].name);
    EXPECT_EQ(r.nodes_before - r.nodes_after, r.fused + r.removed) << r.pass;
    if (i > 0) {
      EXPECT_EQ(r.nodes_before, reports[i - 1].nodes_after) << r.pass;
    }
    rewritten += r.rewritten;
  }
  EXPECT_GT(rewritten, 0u);
  const Session session = Session::load(model);
  const auto& planned = session.pass_reports();
  ASSERT_EQ(planned.size(), reports.size() + 2);  // and the plan's constant folding and dead steps
  EXPECT_EQ(planned[planned.size() - 2].pass, "fold-constants");
  EXPECT_EQ(planned.back().nodes_after, session.model().graph.nodes.size());
}

}  // namespace
}  // namespace detrq::runtime
