// Sensitivity by measurement and the --ap-budget search (issue 16): the Conv/MatMul/Gemm layers a
// precision policy quantizes, in groups derived from node names (a transformer block of the backbone,
// the projector, one decoder layer's attention or MLP, a head); the label-free AP cost of quantizing
// each group alone; then a greedy search that returns groups to float only where needed for the
// label-free AP loss (label_free_ap.h: 100 minus the INT8-against-FP32 AP) to stay within the budget,
// keeping as many multiply-adds in INT8 as it can. The policy is measured first and searched only
// when it is over budget, so a policy that meets the budget costs no extra evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "detrq/quant/label_free_ap.h"
#include "detrq/quant/precision_policy.h"

namespace detrq::quant {

// The group of a Conv/MatMul/Gemm node, from its name's '/'-separated path without the last part:
// through "embeddings" (the patch embedding) or "projector" when the path has one; a numbered block
// just after "encoder" or "decoder" (".../encoder/layer.3", ".../decoder/layers.0"), a decoder block
// split into its attention (parts naming "attn" or "attention") and its other parts (".../mlp");
// otherwise the path with trailing layer numbers ("layers.N", "layer.N", "N") dropped
// ("/m/bbox_embed/layers.0" -> "/m/bbox_embed", "/m/model/enc_output.0" stays).
// A name without '/' is its own group.
std::string layer_group(const std::string& node_name);

struct LayerGroup {
  std::string name;
  std::vector<std::string> nodes;  // in graph order
  int64_t macs = 0;
  bool measured = false;           // the cost below was measured (only when the search ran)
  LabelFreeAp alone;               // the label-free AP with only this group in INT8
  double cost() const { return measured && alone.ap >= 0 ? 100.0 - alone.ap : 0.0; }
};

// One policy the search evaluated.
struct PolicyTrial {
  std::string step;                       // "start", "float <group>", "INT8 again <group>"
  std::vector<std::string> float_groups;  // groups the search keeps float, in the order it chose them
  LabelFreeAp measured;
  double int8_mac_share = 0.0;
  bool within_budget = false;
  double loss() const { return measured.ap >= 0 ? 100.0 - measured.ap : -1.0; }
};

struct PolicySearch {
  double budget = 0.1;  // label-free AP points
  int images = 0;       // held-out images each evaluation ran on
  std::vector<LayerGroup> groups;   // the groups the starting policy quantizes, in graph order
  std::vector<PolicyTrial> trials;  // trials[0] is the starting policy
  int chosen = -1;                  // index into trials; -1: nothing measured
  bool measurable = false;          // the label-free AP could be measured (RF-DETR outputs, reference boxes)
  bool searched = false;            // the start was over budget, so groups were measured and searched
  bool met = false;                 // the chosen policy is within the budget
  int evaluations = 0;              // runs of a Q/DQ model over the held-out images, the start's included
  double seconds = 0.0;             // the search's own time (the start's evaluation excluded)
  std::string summary;              // one sentence saying what happened

  // The policy the search chose: the start's plus the chosen float groups' nodes excluded.
  PrecisionPolicy chosen_policy(const PrecisionPolicy& start) const;
  std::vector<std::string> chosen_float_groups() const;
  // The group a node of the starting policy belongs to; empty when it has none.
  const LayerGroup* group_of(const std::string& node) const;
};

// What one evaluation gives: the label-free AP of a policy's Q/DQ model on the held-out images and
// the share of multiply-adds it puts in INT8.
struct PolicyEvaluation {
  LabelFreeAp ap;
  double int8_mac_share = 0.0;
};
using PolicyEvaluator = std::function<PolicyEvaluation(const PrecisionPolicy&)>;

struct PolicySearchOptions {
  double budget = 0.1;
  int images = 0;  // for the record
};

// A policy is within the budget when its loss exceeds the budget by no more than the loss's standard
// error: with a handful of held-out images the measure resolves about 0.2 point, and a loss the
// measure cannot tell from noise is not a reason to give up INT8 work.
bool within_budget(const LabelFreeAp& measured, double budget);

// `start`: the policy, `start_decisions`: its decisions (insert_qdq's, one per Conv/MatMul/Gemm),
// `start_result`: its evaluation (already made for the report), `macs`: multiply-adds per node.
// `evaluate` is called for every other policy the search tries.
PolicySearch search_policy(const PrecisionPolicy& start, const std::vector<NodeDecision>& start_decisions,
                           const PolicyEvaluation& start_result, const std::map<std::string, int64_t>& macs,
                           const PolicyEvaluator& evaluate, const PolicySearchOptions& options);

// calibration.json's "ap_budget": the budget, the measure, every group's cost, every policy tried (its
// label-free AP, standard error, loss, INT8 share of multiply-adds, whether within budget), the chosen one
// and the time spent.
nlohmann::ordered_json policy_search_to_json(const PolicySearch& search);

// report.html's section: the outcome, an inline SVG bar chart of each group's cost alone (when the search
// ran) and an inline SVG plot of label-free AP against INT8 share of multiply-adds of the policies tried,
// the chosen one marked; each plotted number also in data-* attributes and a table.
std::string policy_search_html(const PolicySearch& search);

}  // namespace detrq::quant
