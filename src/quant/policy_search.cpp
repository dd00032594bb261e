// Sensitivity by measurement: layer groups from node names, each group's cost alone, the greedy search.
#include "detrq/quant/policy_search.h"

#include <algorithm>
#include <chrono>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "detrq/core/log.h"

namespace detrq::quant {
namespace {

std::vector<std::string> split_path(const std::string& name) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t slash = name.find('/', start);
    const std::size_t end = slash == std::string::npos ? name.size() : slash;
    if (end > start) parts.push_back(name.substr(start, end - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

// "layer.3", "layers.0", "enc_output.0", "0": a part ending in a number after a dot (or only digits).
bool numbered(const std::string& part) {
  std::size_t i = part.size();
  while (i > 0 && std::isdigit(static_cast<unsigned char>(part[i - 1]))) --i;
  if (i == part.size()) return false;
  return i == 0 || part[i - 1] == '.';
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count && i < parts.size(); ++i) out += "/" + parts[i];
  return out;
}

// "layers.0", "layer.2", "3": one of a stack of layers inside a module (a head's MLP), not a module.
bool repeated_layer(const std::string& part) {
  if (!numbered(part)) return false;
  const std::string stem = part.substr(0, part.find_last_of('.') == std::string::npos ? 0 : part.find_last_of('.'));
  return stem.empty() || stem == "layer" || stem == "layers";
}

bool names_attention(const std::string& part) {
  return part.find("attn") != std::string::npos || part.find("attention") != std::string::npos;
}

using Clock = std::chrono::steady_clock;

}  // namespace

std::string layer_group(const std::string& node_name) {
  if (node_name.find('/') == std::string::npos) return node_name;
  std::vector<std::string> parts = split_path(node_name);
  if (!parts.empty()) parts.pop_back();  // the operator's own name ("MatMul", "Conv", "MatMul_1")
  if (parts.empty()) return node_name;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "embeddings" || parts[i] == "projector") return join(parts, i + 1);
  }
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if ((parts[i] == "encoder" || parts[i] == "decoder") && numbered(parts[i + 1])) {
      std::string block = join(parts, i + 2);
      if (parts[i] == "decoder" && i + 2 < parts.size()) {
        block += names_attention(parts[i + 2]) ? std::string("/attention") : "/" + parts[i + 2];
      }
      return block;
    }
  }
  while (parts.size() > 1 && repeated_layer(parts.back())) parts.pop_back();
  return join(parts, parts.size());
}

bool within_budget(const LabelFreeAp& measured, double budget) {
  return measured.ap >= 0 && (100.0 - measured.ap) - measured.standard_error <= budget;
}

namespace {
PrecisionPolicy with_float_groups(const PrecisionPolicy& start, const std::vector<LayerGroup>& groups,
                                  const std::vector<std::string>& float_groups) {
  PrecisionPolicy p = start;
  for (const auto& name : float_groups) {
    for (const auto& g : groups) {
      if (g.name != name) continue;
      const std::string why =
          g.measured ? fmt::format("AP budget: group {} kept in float (alone in INT8 it costs {:.2f} +- {:.2f} "
                                   "label-free AP points)",
                                   g.name, g.cost(), g.alone.standard_error)
                     : fmt::format("AP budget: group {} kept in float", g.name);
      for (const auto& n : g.nodes) p.keep_float[n] = why;
    }
  }
  return p;
}
}  // namespace

PrecisionPolicy PolicySearch::chosen_policy(const PrecisionPolicy& start) const {
  return with_float_groups(start, groups, chosen_float_groups());
}

std::vector<std::string> PolicySearch::chosen_float_groups() const {
  if (chosen < 0 || chosen >= static_cast<int>(trials.size())) return {};
  return trials[static_cast<std::size_t>(chosen)].float_groups;
}

const LayerGroup* PolicySearch::group_of(const std::string& node) const {
  for (const auto& g : groups) {
    if (std::find(g.nodes.begin(), g.nodes.end(), node) != g.nodes.end()) return &g;
  }
  return nullptr;
}

PolicySearch search_policy(const PrecisionPolicy& start, const std::vector<NodeDecision>& start_decisions,
                           const PolicyEvaluation& start_result, const std::map<std::string, int64_t>& macs,
                           const PolicyEvaluator& evaluate, const PolicySearchOptions& options) {
  PolicySearch s;
  s.budget = options.budget;
  s.images = options.images;
  for (const auto& d : start_decisions) {
    if (!d.quantize) continue;
    const std::string name = layer_group(d.node);
    auto it = std::find_if(s.groups.begin(), s.groups.end(), [&](const LayerGroup& g) { return g.name == name; });
    if (it == s.groups.end()) {
      s.groups.push_back({name, {}, 0, false, {}});
      it = s.groups.end() - 1;
    }
    it->nodes.push_back(d.node);
    const auto m = macs.find(d.node);
    if (m != macs.end()) it->macs += m->second;
  }

  PolicyTrial first{"start", {}, start_result.ap, start_result.int8_mac_share,
                    within_budget(start_result.ap, options.budget)};
  s.trials.push_back(first);
  s.evaluations = 1;
  s.chosen = 0;
  s.measurable = start_result.ap.ap >= 0;
  if (!s.measurable) {
    s.summary = "label-free AP not measurable (outputs are not RF-DETR's dets/labels, or the FP32 model detects "
                "nothing on the held-out images): the policy is kept as it is, the AP budget is not checked";
    return s;
  }
  if (first.within_budget) {
    s.met = true;
    s.summary = fmt::format("label-free AP loss {:.2f} +- {:.2f} points is within the {:.2g}-point budget: "
                            "no search needed",
                            first.loss(), first.measured.standard_error, options.budget);
    return s;
  }

  const auto t0 = Clock::now();
  s.searched = true;
  const auto policy_with = [&](const std::vector<std::string>& float_groups) {
    return with_float_groups(start, s.groups, float_groups);
  };
  const auto try_policy = [&](const std::string& step, const std::vector<std::string>& float_groups) {
    const PolicyEvaluation e = evaluate(policy_with(float_groups));
    ++s.evaluations;
    s.trials.push_back({step, float_groups, e.ap, e.int8_mac_share, within_budget(e.ap, options.budget)});
    core::log_info("AP budget: {} -> label-free AP {:.2f} +- {:.2f}, {:.1f}% of multiply-adds in INT8", step, e.ap.ap,
                   e.ap.standard_error, 100.0 * e.int8_mac_share);
    return s.trials.back().within_budget;
  };

  // 1. Each group alone in INT8, everything else float.
  for (auto& g : s.groups) {
    PrecisionPolicy alone = start;
    alone.keep_float.clear();
    alone.include = g.nodes;
    alone.exclude = {"*"};
    g.alone = evaluate(alone).ap;
    g.measured = true;
    ++s.evaluations;
    core::log_info("AP budget: {} alone in INT8 costs {:.2f} +- {:.2f} label-free AP points", g.name, g.cost(),
                   g.alone.standard_error);
  }

  // 2. Groups back to float, the most costly per multiply-add first, until the loss is within budget.
  std::vector<std::size_t> order(s.groups.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const LayerGroup& ga = s.groups[a];
    const LayerGroup& gb = s.groups[b];
    const double lhs = ga.cost() * static_cast<double>(std::max<int64_t>(gb.macs, 1));
    const double rhs = gb.cost() * static_cast<double>(std::max<int64_t>(ga.macs, 1));
    if (lhs != rhs) return lhs > rhs;
    return ga.macs < gb.macs;
  });
  std::vector<std::string> floated;
  bool ok = false;
  for (std::size_t i : order) {
    floated.push_back(s.groups[i].name);
    if ((ok = try_policy("float " + s.groups[i].name, floated))) break;
  }

  // 3. Each floated group but the last (without it the previous trial failed) tried in INT8 again,
  //    the largest first, kept in INT8 where the budget still holds.
  if (ok && floated.size() > 1) {
    std::vector<std::string> earlier(floated.begin(), floated.end() - 1);
    std::stable_sort(earlier.begin(), earlier.end(), [&](const std::string& a, const std::string& b) {
      const auto macs_of = [&](const std::string& n) {
        for (const auto& g : s.groups) {
          if (g.name == n) return g.macs;
        }
        return int64_t{0};
      };
      return macs_of(a) > macs_of(b);
    });
    for (const auto& name : earlier) {
      std::vector<std::string> without;
      for (const auto& f : floated) {
        if (f != name) without.push_back(f);
      }
      if (try_policy("INT8 again " + name, without)) floated = without;
    }
  }

  // The chosen policy: within budget with the most INT8 work (then the better AP); else the most accurate.
  int best = -1;
  for (int i = 0; i < static_cast<int>(s.trials.size()); ++i) {
    const PolicyTrial& t = s.trials[static_cast<std::size_t>(i)];
    if (!t.within_budget) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const PolicyTrial& b = s.trials[static_cast<std::size_t>(best)];
    if (t.int8_mac_share > b.int8_mac_share || (t.int8_mac_share == b.int8_mac_share && t.measured.ap > b.measured.ap)) {
      best = i;
    }
  }
  if (best >= 0) {
    s.met = true;
  } else {
    best = 0;
    for (int i = 1; i < static_cast<int>(s.trials.size()); ++i) {
      if (s.trials[static_cast<std::size_t>(i)].measured.ap > s.trials[static_cast<std::size_t>(best)].measured.ap) best = i;
    }
  }
  s.chosen = best;
  s.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const PolicyTrial& c = s.trials[static_cast<std::size_t>(best)];
  if (s.met) {
    s.summary = fmt::format("label-free AP loss {:.2f} +- {:.2f} points was over the {:.2g}-point budget; with {} of {} "
                            "groups in float it is {:.2f} +- {:.2f}, {:.1f}% of multiply-adds in INT8 "
                            "({} evaluations, {:.0f} s)",
                            first.loss(), first.measured.standard_error, options.budget, c.float_groups.size(),
                            s.groups.size(), c.loss(), c.measured.standard_error, 100.0 * c.int8_mac_share,
                            s.evaluations, s.seconds);
  } else {
    s.summary = fmt::format("the {:.2g}-point AP budget cannot be met: no policy tried was within it; published the "
                            "most accurate one tried, label-free AP loss {:.2f} +- {:.2f} points, {:.1f}% of "
                            "multiply-adds in INT8 ({} evaluations, {:.0f} s)",
                            options.budget, c.loss(), c.measured.standard_error, 100.0 * c.int8_mac_share,
                            s.evaluations, s.seconds);
  }
  return s;
}

namespace {
nlohmann::ordered_json number_or_null(double v, bool known) { return known ? nlohmann::ordered_json(v) : nullptr; }
}  // namespace

nlohmann::ordered_json policy_search_to_json(const PolicySearch& s) {
  nlohmann::ordered_json j;
  j["budget_points"] = s.budget;
  j["measure"] = "label-free AP: the INT8 model's detections scored COCO-style (IoU 0.50:0.95) against the FP32 "
                 "model's detections scoring 0.3 or more, on the held-out images; loss = 100 - AP; a policy is within "
                 "the budget when its loss minus its jackknife standard error is at most the budget";
  j["heldout_images"] = s.images;
  j["measurable"] = s.measurable;
  j["searched"] = s.searched;
  j["met"] = s.met;
  j["evaluations"] = s.evaluations;
  j["seconds"] = s.seconds;
  j["summary"] = s.summary;
  nlohmann::ordered_json groups = nlohmann::ordered_json::array();
  for (const auto& g : s.groups) {
    const bool known = g.measured && g.alone.ap >= 0;
    groups.push_back({{"name", g.name},
                      {"nodes", g.nodes},
                      {"macs", g.macs},
                      {"label_free_ap_alone", number_or_null(g.alone.ap, known)},
                      {"cost_points", number_or_null(g.cost(), known)},
                      {"standard_error", number_or_null(g.alone.standard_error, known)}});
  }
  j["groups"] = std::move(groups);
  nlohmann::ordered_json trials = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < s.trials.size(); ++i) {
    const PolicyTrial& t = s.trials[i];
    const bool known = t.measured.ap >= 0;
    trials.push_back({{"step", t.step},
                      {"float_groups", t.float_groups},
                      {"label_free_ap", number_or_null(t.measured.ap, known)},
                      {"standard_error", number_or_null(t.measured.standard_error, known)},
                      {"loss_points", number_or_null(t.loss(), known)},
                      {"int8_mac_share", t.int8_mac_share},
                      {"within_budget", t.within_budget},
                      {"chosen", static_cast<int>(i) == s.chosen}});
  }
  j["policies"] = std::move(trials);
  j["chosen"] = s.chosen >= 0 ? nlohmann::ordered_json(s.chosen) : nullptr;
  j["float_groups"] = s.chosen_float_groups();
  return j;
}

}  // namespace detrq::quant
