// Q/DQ scale check (see qdq_scale_check.h).
#include "runtime/passes/qdq_scale_check.h"
#include "runtime/passes/pass.h"

#include <cmath>
#include <string>

#include "detrq/core/error.h"

namespace detrq::runtime {

void check_qdq_scales(const onnx::Graph& graph) {
  for (const auto& n : graph.nodes) {
    if ((!n.domain.empty() && n.domain != "ai.onnx") ||
        (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear") || n.inputs.size() < 2) {
      continue;
    }
    auto it = graph.initializers.find(n.inputs[1]);
    if (it == graph.initializers.end() || it->second.dtype() != core::DType::kFloat32) continue;
    const core::Tensor& scale = it->second;
    for (int64_t i = 0; i < scale.numel(); ++i) {
      const float v = scale.data<float>()[i];
      if (v != 0.0F && std::isfinite(v)) continue;
      const std::string value = std::isnan(v) ? "NaN" : v == 0.0F ? "zero" : "infinite";
      throw_invalid(n.describe(),
                    "scale '" + n.inputs[1] + "' is " + value +
                        (scale.numel() > 1 ? " at index " + std::to_string(i) : std::string()),
                    "every Q/DQ scale must be a finite non-zero number: re-run detrq calibrate");
    }
  }
}

}  // namespace detrq::runtime

namespace detrq::runtime::passes {

// Pass "check-qdq-scales": reads only.
PassChanges check_qdq_scales(PassContext& ctx) {
  runtime::check_qdq_scales(ctx.graph.graph());
  return {};
}

}  // namespace detrq::runtime::passes
