// Pass "check-internal-domain": refuses a model that uses detrq's internal operator domain without
// being a plan detrq wrote, then marks this plan as one (it may gain internal nodes; an engine file
// stores it and must load again).
#include "detrq/core/error.h"
#include "runtime/passes/pass.h"
#include "runtime/internal_domain.h"

namespace detrq::runtime::passes {

PassChanges check_internal_domain(PassContext& ctx) {
  onnx::Model& model = ctx.model;
  for (const auto& n : model.graph.nodes) {
    if (n.domain == kInternalDomain && !model.metadata.count(kInternalPlanKey)) {
      // (One literal: g++ 12 warns falsely on string + const char* here.)
      throw_unsupported(n.describe(), "uses detrq's internal operator domain com.detrq",
                        "only plans that detrq writes (CPU engine files) may contain it");
    }
  }
  model.metadata[kInternalPlanKey] = std::string(1, '1');  // (g++ 12 warns falsely on assigning "1")
  return {};
}

}  // namespace detrq::runtime::passes
