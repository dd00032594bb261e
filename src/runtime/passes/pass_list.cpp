// The ordered list of the Session's passes, from pass_list.def.
#include "runtime/passes/pass.h"

#include "detrq/core/error.h"

namespace detrq::runtime::passes {

#define DETRQ_PASS(function, name, gate) PassChanges function(PassContext& ctx);
#include "runtime/passes/pass_list.def"
#undef DETRQ_PASS

const std::vector<Pass>& session_passes() {
  static const std::vector<Pass> kList = {
#define DETRQ_PASS(function, name, gate) Pass{name, PassGate::gate, &function},
#include "runtime/passes/pass_list.def"
#undef DETRQ_PASS
  };
  return kList;
}

const Pass& find_pass(const std::string& name) {
  for (const Pass& pass : session_passes()) {
    if (name == pass.name) return pass;
  }
  throw Error(ErrorKind::kInternal, "graph pass '" + name + "'", "is not in the pass list");
}

}  // namespace detrq::runtime::passes
