// PrecisionPolicy: which Conv/MatMul/Gemm nodes run in INT8. A DETR's accuracy hinges on a few cheap
// places (deformable sampling, box regression, the proposal ranking), which stay float by default;
// attention score products and the patch embedding (40% and 4% of RF-DETR's multiply-adds) are INT8
// unless float_attention_and_stem; --exclude and --include glob patterns over node names override.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "detrq/onnx/model.h"

namespace detrq::quant {

// Shell-style match: '*' any run of characters, '?' one character.
bool glob_match(std::string_view pattern, std::string_view text);

struct NodeDecision {
  std::string node;     // node name
  std::string op_type;
  bool quantize = false;
  std::string reason;   // why it stays float, or what forced it to INT8
};

struct PrecisionPolicy {
  bool detr_defaults = true;
  // With detr_defaults: also keep attention score products (MatMuls of two computed tensors) and the
  // Conv reading the image in float, as detrq did before counting multiply-adds.
  bool float_attention_and_stem = false;
  std::vector<std::string> exclude;  // node-name patterns kept in float
  std::vector<std::string> include;  // node-name patterns quantized even where a default or exclude says float
  // Node names (exact) kept float before anything else is read, each with its reason: what the AP-budget
  // search (policy_search.h) returns to float, which --include may not override.
  std::map<std::string, std::string> keep_float;
  // Also Q/DQ on the skip input of a residual Add that reads an INT8 layer's output (directly or after
  // a constant bias Add): TensorRT's explicit-quantization rules fuse such an Add into the layer only
  // when both of its inputs are quantized. Off by default: detrq's CPU runtime gains nothing from it.
  bool residual_adds = false;

  // The DETR defaults as (pattern, reason), applied after include/exclude.
  static const std::vector<std::pair<std::string, std::string>>& detr_patterns();

  // Decision for a Conv/MatMul/Gemm node; `all_inputs_activations` is true for a MatMul of two
  // computed tensors (an attention product); `reads_graph_input` when it consumes a graph input;
  // `only_ranking` when its result reaches the outputs only through the scores of a TopK/ArgMax
  // (two-stage query selection).
  NodeDecision decide(const onnx::Node& node, bool all_inputs_activations, bool reads_graph_input,
                      bool only_ranking = false) const;
};

}  // namespace detrq::quant
