// The AP-budget search on a synthetic evaluator whose costs are known by construction: groups from
// RF-DETR's node names, no extra evaluation when the start is within budget, the greedy order (most
// costly per multiply-add first) and the refinement, a budget that cannot be met, and the JSON/HTML.
#include "detrq/quant/policy_search.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace detrq::quant;

TEST(LayerGroup, FollowsRfDetrModuleNames) {
  EXPECT_EQ(layer_group("/m/model/backbone/backbone/encoder/layer.3/attention/attention/query/MatMul"),
            "/m/model/backbone/backbone/encoder/layer.3");
  EXPECT_EQ(layer_group("/m/model/backbone/backbone/encoder/layer.3/mlp/fc2/MatMul"),
            "/m/model/backbone/backbone/encoder/layer.3");
  EXPECT_EQ(layer_group("/m/model/backbone/backbone/embeddings/patch_embeddings/projection/Conv"),
            "/m/model/backbone/backbone/embeddings");
  EXPECT_EQ(layer_group("/m/model/backbone/projector/projector_layer/bottlenecks.1/conv2/conv/Conv"),
            "/m/model/backbone/projector");
  EXPECT_EQ(layer_group("/m/model/decoder/layers.1/self_attn/MatMul_1"), "/m/model/decoder/layers.1/attention");
  EXPECT_EQ(layer_group("/m/model/decoder/layers.1/cross_attn/value_proj/MatMul"), "/m/model/decoder/layers.1/attention");
  EXPECT_EQ(layer_group("/m/model/decoder/layers.1/mlp/fc1/MatMul"), "/m/model/decoder/layers.1/mlp");
  EXPECT_EQ(layer_group("/m/model/decoder/ref_point_head/layers.0/MatMul"), "/m/model/decoder/ref_point_head");
  EXPECT_EQ(layer_group("/m/model/enc_output.0/MatMul"), "/m/model/enc_output.0");
  EXPECT_EQ(layer_group("/m/bbox_embed/layers.2/MatMul"), "/m/bbox_embed");
  EXPECT_EQ(layer_group("/m/class_embed/MatMul"), "/m/class_embed");
  EXPECT_EQ(layer_group("node_17"), "node_17");
}

namespace {

// Three groups by node name: A (one node, 100 MACs), B (two nodes, 10), C (one node, 1000); each costs a fixed
// number of points while in INT8 (B's split over its two nodes), and the costs add up.
struct Fake {
  std::map<std::string, int64_t> macs{{"/A/x/MatMul", 100}, {"/B/y/MatMul", 4}, {"/B/y/MatMul_1", 6}, {"/C/w/MatMul", 1000}};
  std::map<std::string, double> cost{{"/A/x", 0.5}, {"/B/y", 0.3}, {"/C/w", 0.05}};  // by group
  std::vector<NodeDecision> decisions{{"/A/x/MatMul", "MatMul", true, {}},
                                      {"/B/y/MatMul", "MatMul", true, {}},
                                      {"/B/y/MatMul_1", "MatMul", true, {}},
                                      {"/C/w/MatMul", "MatMul", true, {}},
                                      {"/D/v/MatMul", "MatMul", false, "kept float by the start"}};
  double standard_error = 0.0;
  int calls = 0;

  bool quantized(const PrecisionPolicy& p, const std::string& node) const {
    detrq::onnx::Node n;
    n.name = node;
    n.op_type = "MatMul";
    return p.decide(n, false, false).quantize;
  }
  PolicyEvaluation operator()(const PrecisionPolicy& p) {
    ++calls;
    double loss = 0.0;
    int64_t int8 = 0, total = 0;
    for (const auto& [node, m] : macs) {
      total += m;
      if (!quantized(p, node)) continue;
      int8 += m;
      loss += cost.at(layer_group(node)) / (layer_group(node) == "/B/y" ? 2.0 : 1.0);
    }
    return {{100.0 - loss, standard_error}, static_cast<double>(int8) / static_cast<double>(total)};
  }
};

PrecisionPolicy start_policy() {
  PrecisionPolicy p;
  p.detr_defaults = false;
  p.exclude = {"/D/*"};
  return p;
}

}  // namespace

TEST(PolicySearch, WithinBudgetAtTheStartCostsNoEvaluation) {
  Fake fake;
  fake.cost = {{"/A/x", 0.02}, {"/B/y", 0.02}, {"/C/w", 0.02}};
  const PolicyEvaluation start = fake(start_policy());
  fake.calls = 0;
  const PolicySearch s = search_policy(start_policy(), fake.decisions, start, fake.macs, std::ref(fake), {0.1, 8});
  EXPECT_EQ(fake.calls, 0);
  EXPECT_EQ(s.evaluations, 1);
  EXPECT_TRUE(s.met);
  EXPECT_FALSE(s.searched);
  EXPECT_EQ(s.chosen, 0);
  EXPECT_TRUE(s.chosen_float_groups().empty());
  ASSERT_EQ(s.groups.size(), 3U);  // D stays float in the start: not a group
  EXPECT_EQ(s.groups[1].name, "/B/y");
  EXPECT_EQ(s.groups[1].macs, 10);
}

TEST(PolicySearch, ALossWithinItsNoiseOfTheBudgetIsWithinIt) {
  EXPECT_TRUE(within_budget({99.8, 0.2}, 0.1));   // 0.2 lost, +- 0.2
  EXPECT_FALSE(within_budget({99.5, 0.2}, 0.1));  // 0.5 lost, +- 0.2
  EXPECT_TRUE(within_budget({100.0, 0.0}, 0.0));
  EXPECT_FALSE(within_budget({-1.0, 0.0}, 100.0));  // not measured
}

TEST(PolicySearch, FloatsTheCostliestPerMultiplyAddFirstThenTriesTheRestInInt8Again) {
  Fake fake;
  // Start: every group INT8, loss 0.85 > 0.1. Alone: A 0.5 (0.005 per MAC), B 0.3 (0.03), C 0.05 (0.00005).
  // Greedy: float B (loss 0.55), then A (0.05: within). Refinement: B in INT8 again gives 0.35: refused.
  const PolicyEvaluation start = fake(start_policy());
  fake.calls = 0;
  const PolicySearch s = search_policy(start_policy(), fake.decisions, start, fake.macs, std::ref(fake), {0.1, 8});
  EXPECT_EQ(fake.calls, 3 + 2 + 1);
  EXPECT_EQ(s.evaluations, 1 + 6);
  EXPECT_TRUE(s.searched);
  EXPECT_TRUE(s.met);
  EXPECT_NEAR(s.groups[0].cost(), 0.5, 1e-9);
  EXPECT_NEAR(s.groups[1].cost(), 0.3, 1e-9);
  EXPECT_NEAR(s.groups[2].cost(), 0.05, 1e-9);
  ASSERT_EQ(s.trials.size(), 4U);
  EXPECT_EQ(s.trials[1].step, "float /B/y");
  EXPECT_NEAR(s.trials[1].loss(), 0.55, 1e-9);
  EXPECT_EQ(s.trials[2].step, "float /A/x");
  EXPECT_NEAR(s.trials[2].loss(), 0.05, 1e-9);
  EXPECT_EQ(s.trials[3].step, "INT8 again /B/y");
  EXPECT_FALSE(s.trials[3].within_budget);
  EXPECT_EQ(s.chosen, 2);
  EXPECT_EQ(s.chosen_float_groups(), (std::vector<std::string>{"/B/y", "/A/x"}));
  EXPECT_NEAR(s.trials[2].int8_mac_share, 1000.0 / 1110.0, 1e-12);
  // The chosen policy keeps exactly A and B float, with the reason, even against an --include.
  PrecisionPolicy with_include = start_policy();
  with_include.include = {"/A/*"};
  const PrecisionPolicy chosen = s.chosen_policy(with_include);
  EXPECT_FALSE(fake.quantized(chosen, "/A/x/MatMul"));
  EXPECT_FALSE(fake.quantized(chosen, "/B/y/MatMul_1"));
  EXPECT_TRUE(fake.quantized(chosen, "/C/w/MatMul"));
  EXPECT_NE(chosen.keep_float.at("/A/x/MatMul").find("alone in INT8 it costs 0.50"), std::string::npos);
}

TEST(PolicySearch, RefinementKeepsAGroupInInt8WhenTheBudgetStillHolds) {
  Fake fake;
  // Alone: A 0.06 (0.0006 per MAC), B 0.3 (0.03), C 0.08 (0.00008): float B (0.14 left: over), then A (0.08: within);
  // B back in INT8: 0.38, refused. Budget 0.1.
  fake.cost = {{"/A/x", 0.06}, {"/B/y", 0.3}, {"/C/w", 0.08}};
  const PolicySearch s1 = search_policy(start_policy(), fake.decisions, fake(start_policy()), fake.macs, std::ref(fake),
                                        {0.1, 8});
  EXPECT_EQ(s1.chosen_float_groups(), (std::vector<std::string>{"/B/y", "/A/x"}));
  // With a budget of 0.15 floating B alone is enough: one greedy step, nothing to refine.
  fake.calls = 0;
  const PolicySearch s2 = search_policy(start_policy(), fake.decisions, fake(start_policy()), fake.macs, std::ref(fake),
                                        {0.15, 8});
  EXPECT_EQ(fake.calls, 1 + 3 + 1);
  EXPECT_EQ(s2.chosen_float_groups(), (std::vector<std::string>{"/B/y"}));
}

TEST(PolicySearch, ABudgetThatCannotBeMetPublishesTheMostAccuratePolicyAndSaysSo) {
  Fake fake;
  fake.standard_error = 0.0;
  const PolicyEvaluator noisy = [&](const PrecisionPolicy& p) {
    PolicyEvaluation e = fake(p);
    e.ap.ap -= 1.0;  // an evaluator that never reaches 99.9, even with everything in float
    return e;
  };
  const PolicySearch s = search_policy(start_policy(), fake.decisions, noisy(start_policy()), fake.macs, noisy, {0.1, 8});
  EXPECT_FALSE(s.met);
  EXPECT_NE(s.summary.find("cannot be met"), std::string::npos);
  double best = -1;
  for (const auto& t : s.trials) best = std::max(best, t.measured.ap);
  EXPECT_DOUBLE_EQ(s.trials[static_cast<std::size_t>(s.chosen)].measured.ap, best);
  EXPECT_EQ(s.chosen_float_groups().size(), 3U);  // all float: the most accurate here
}

TEST(PolicySearch, NotMeasurableKeepsTheStart) {
  Fake fake;
  fake.calls = 0;
  const PolicySearch s = search_policy(start_policy(), fake.decisions, {{-1.0, 0.0}, 0.9}, fake.macs, std::ref(fake), {0.1, 8});
  EXPECT_EQ(fake.calls, 0);
  EXPECT_FALSE(s.measurable);
  EXPECT_EQ(s.chosen, 0);
  EXPECT_NE(s.summary.find("not measurable"), std::string::npos);
}

TEST(PolicySearch, JsonAndHtmlCarryEveryTrialAndGroup) {
  Fake fake;
  const PolicySearch s = search_policy(start_policy(), fake.decisions, fake(start_policy()), fake.macs, std::ref(fake),
                                       {0.1, 8});
  const nlohmann::ordered_json j = policy_search_to_json(s);
  EXPECT_EQ(j["policies"].size(), s.trials.size());
  EXPECT_EQ(j["groups"].size(), 3U);
  EXPECT_EQ(j["chosen"], 2);
  EXPECT_TRUE(j["policies"][2]["chosen"].get<bool>());
  EXPECT_NEAR(j["groups"][1]["cost_points"].get<double>(), 0.3, 1e-9);
  EXPECT_EQ(j["float_groups"].get<std::vector<std::string>>(), (std::vector<std::string>{"/B/y", "/A/x"}));
  const std::string html = policy_search_html(s);
  EXPECT_NE(html.find("id=\"sensitivity-chart\""), std::string::npos);
  EXPECT_NE(html.find("id=\"policy-chart\""), std::string::npos);
  EXPECT_NE(html.find("data-group=\"/B/y\" data-cost=\"0.300000\""), std::string::npos);
  EXPECT_NE(html.find("data-trial=\"2\" data-share=\"0.900901\""), std::string::npos);
  EXPECT_NE(html.find("data-chosen=\"true\""), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
}
