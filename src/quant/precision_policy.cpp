// PrecisionPolicy: the DETR defaults and the user's include/exclude patterns.
#include "detrq/quant/precision_policy.h"

namespace detrq::quant {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point: linear in practice, no recursion on hostile input.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const std::vector<std::pair<std::string, std::string>>& PrecisionPolicy::detr_patterns() {
  static const std::vector<std::pair<std::string, std::string>> patterns = {
      {"*sampling_offsets*", "deformable-attention sampling offsets feed GridSample coordinates"},
      {"*attention_weights*", "deformable-attention weights scale the sampled features"},
      {"*bbox_embed*", "box-regression head"},
  };
  return patterns;
}

NodeDecision PrecisionPolicy::decide(const onnx::Node& node, bool all_inputs_activations, bool reads_graph_input,
                                     bool only_ranking) const {
  NodeDecision d{node.name, node.op_type, true, {}};
  if (auto k = keep_float.find(node.name); k != keep_float.end()) {
    d.quantize = false;
    d.reason = k->second;
    return d;
  }
  for (const auto& p : include) {
    if (glob_match(p, node.name)) {
      d.reason = "included by --include " + p;
      return d;
    }
  }
  d.quantize = false;
  for (const auto& p : exclude) {
    if (glob_match(p, node.name)) {
      d.reason = "excluded by --exclude " + p;
      return d;
    }
  }
  if (detr_defaults) {
    if (float_attention_and_stem && node.op_type == "MatMul" && all_inputs_activations) {
      d.reason = "attention score product (both inputs computed; softmax precision)";
      return d;
    }
    for (const auto& [p, why] : detr_patterns()) {
      if (glob_match(p, node.name)) {
        d.reason = why;
        return d;
      }
    }
    if (float_attention_and_stem && node.op_type == "Conv" && reads_graph_input) {
      d.reason = "patch embedding (reads the image)";
      return d;
    }
    // RF-DETR's two-stage query selection ranks encoder proposals with TopK: a ranking turns noise
    // far below one INT8 step into different, reordered queries. The layers that only score the
    // ranking are a sliver of the work, so they stay float (the backbone also feeds the proposals).
    if (only_ranking) {
      d.reason = "only scores the TopK that selects the queries (ranking amplifies any noise)";
      return d;
    }
  }
  d.quantize = true;
  return d;
}

}  // namespace detrq::quant
