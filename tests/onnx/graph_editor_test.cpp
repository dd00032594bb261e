// The graph layer (detrq/onnx/graph_editor.h): after every kind of edit its index of producers,
// consumers and constants equals one built from scratch over the edited graph, and dead-node removal and
// renaming leave a valid graph.
#include <gtest/gtest.h>

#include <algorithm>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_editor.h"

namespace detrq::onnx {
namespace {

Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.op_type = op;
  n.name = out.at(0) + "_node";
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// x -> Relu(a) -> Add(a, w) = b -> Mul(b, a) = y; Neg(x) = dead; w through Identity as w_id too.
Graph small_graph() {
  Graph g;
  g.name = "small";
  g.inputs = {ValueInfo{"x", core::DType::kFloat32, {2}, true}};
  g.outputs = {ValueInfo{"y", core::DType::kFloat32, {2}, true}};
  g.initializers["w"] = Tensor::from_vector<float>({2}, {1.0F, 2.0F});
  g.initializers["unused"] = Tensor::scalar<float>(3.0F);
  g.nodes = {node("Relu", {"x"}, {"a"}), node("Identity", {"w"}, {"w_id"}), node("Add", {"a", "w_id"}, {"b"}),
             node("Mul", {"b", "a"}, {"y"}), node("Neg", {"x"}, {"dead"})};
  return g;
}

// The editor's answers, by node name rather than id, for comparison with a fresh index.
std::map<std::string, std::pair<std::string, std::vector<std::string>>> answers(const GraphEditor& e,
                                                                                const std::set<std::string>& all) {
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& name : all) {
    const auto p = e.producer(name);
    std::vector<std::string> readers;
    for (NodeId id : e.consumers(name)) readers.push_back(e.node(id).name);
    std::sort(readers.begin(), readers.end());
    out[name] = {p ? e.node(*p).name : std::string("-"), readers};
  }
  return out;
}

// The live editor's index equals one built from scratch over a committed copy of its graph.
void expect_index_fresh(GraphEditor& editor) {
  editor.check_index("test");
  std::set<std::string> all;
  for (NodeId id = 0; id < editor.slot_count(); ++id) {
    for (const auto& t : editor.node(id).inputs) all.insert(t);
    for (const auto& t : editor.node(id).outputs) all.insert(t);
  }
  const auto live = answers(editor, all);
  editor.commit();
  Graph copy = editor.graph();
  const GraphEditor fresh(copy);
  const auto want = answers(fresh, all);
  EXPECT_EQ(live, want);
  EXPECT_EQ(answers(editor, all), want);  // and after commit's renumbering
}

TEST(GraphEditor, IndexesProducersConsumersAndConstantsThroughIdentity) {
  Graph g = small_graph();
  GraphEditor e(g);
  EXPECT_EQ(e.node(*e.producer("b")).op_type, "Add");
  EXPECT_FALSE(e.producer("x"));
  EXPECT_FALSE(e.producer("w"));
  EXPECT_EQ(e.consumers("a").size(), 2u);
  EXPECT_EQ(e.consumers("x").size(), 2u);
  EXPECT_TRUE(e.internal("b", 1, {}));
  EXPECT_FALSE(e.internal("b", 1, {"b"}));
  EXPECT_FALSE(e.internal("y", 0, {}));
  ASSERT_NE(e.constant("w_id"), nullptr);
  EXPECT_EQ(e.constant("w_id")->data<float>()[1], 2.0F);
  EXPECT_EQ(e.constant_name("w_id"), "w");
  EXPECT_EQ(e.initializer("w_id"), nullptr);
  EXPECT_EQ(e.constant("a"), nullptr);
  expect_index_fresh(e);
}

TEST(GraphEditor, IndexStaysRightAfterReplaceRemoveAndAppend) {
  Graph g = small_graph();
  GraphEditor e(g);
  // Add(a, w_id) + Mul(b, a) fused into one node in the Add's place, reading a twice.
  const NodeId add = *e.producer("b");
  const NodeId mul = *e.producer("y");
  e.remove(mul);
  e.replace(add, node("AddMul", {"a", "w_id", "a"}, {"y"}));
  EXPECT_EQ(*e.producer("y"), add);
  EXPECT_FALSE(e.producer("b"));
  EXPECT_EQ(e.consumers("a").size(), 2u);  // both from AddMul's two slots
  EXPECT_EQ(e.live_count(), 4u);
  const NodeId extra = e.append(node("Abs", {"y"}, {"z"}));
  EXPECT_EQ(e.consumers("y"), std::vector<NodeId>{extra});
  expect_index_fresh(e);
  // Commit keeps the order of what is left.
  std::vector<std::string> order;
  for (const auto& n : g.nodes) order.push_back(n.op_type);
  EXPECT_EQ(order, (std::vector<std::string>{"Relu", "Identity", "AddMul", "Neg", "Abs"}));
}

TEST(GraphEditor, IndexStaysRightAfterRewiringAndRenaming) {
  Graph g = small_graph();
  GraphEditor e(g);
  e.set_input(*e.producer("y"), 1, "x");  // Mul(b, x)
  EXPECT_EQ(e.consumers("a").size(), 1u);
  EXPECT_EQ(e.consumers("x").size(), 3u);
  expect_index_fresh(e);
  e.redirect_consumers("b", "a");  // Mul(a, x)
  EXPECT_TRUE(e.consumers("b").empty());
  expect_index_fresh(e);
  e.rename("y", "out");  // a graph output: its producer and the graph's output follow
  e.rename("w", "weight");
  EXPECT_EQ(g.outputs.at(0).name, "out");
  EXPECT_TRUE(e.is_graph_output("out"));
  EXPECT_FALSE(e.is_graph_output("y"));
  EXPECT_EQ(e.node(*e.producer("out")).op_type, "Mul");
  EXPECT_EQ(e.constant_name("w_id"), "weight");
  EXPECT_EQ(e.node(e.consumers("weight").at(0)).op_type, "Identity");
  expect_index_fresh(e);
  EXPECT_NO_THROW(validate_graph(g, "test"));
}

TEST(GraphEditor, RemovesDeadNodesAndTheInitializersOnlyTheyRead) {
  Graph g = small_graph();
  GraphEditor e(g);
  e.redirect_consumers("w_id", "x");  // the Identity of w and w itself become dead
  EXPECT_EQ(e.remove_dead_nodes(), 2u);  // Neg and Identity
  EXPECT_EQ(g.initializers.count("w"), 0u);
  EXPECT_EQ(g.initializers.count("unused"), 0u);
  expect_index_fresh(e);
  std::vector<std::string> order;
  for (const auto& n : g.nodes) order.push_back(n.op_type);
  EXPECT_EQ(order, (std::vector<std::string>{"Relu", "Add", "Mul"}));
  EXPECT_NO_THROW(validate_graph(g, "test"));
}

TEST(GraphEditor, CheckIndexCatchesEditsBehindItsBack) {
  Graph g = small_graph();
  GraphEditor e(g);
  g.nodes[3].inputs[1] = "x";  // not through the editor
  EXPECT_THROW(e.check_index("test"), Error);
}

TEST(GraphEditor, ValidationNamesWhereTheGraphBroke) {
  Graph g = small_graph();
  g.nodes[2].inputs[0] = "nowhere";
  try {
    validate_graph(g, "graph pass 'x'");
    FAIL() << "a dangling input was not caught";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), ErrorKind::kInternal);
    EXPECT_NE(std::string(err.what()).find("graph pass 'x'"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("nowhere"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace detrq::onnx
