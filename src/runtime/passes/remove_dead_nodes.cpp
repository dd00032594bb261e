// Pass "remove-dead-nodes": drops the nodes whose outputs reach no graph output (what a fusion or a fold
// left without readers) and the initializers nothing reads any more.
#include "runtime/passes/pass.h"

namespace detrq::runtime::passes {

PassChanges remove_dead_nodes(PassContext& ctx) {
  PassChanges changes;
  changes.removed = ctx.graph.remove_dead_nodes();
  return changes;
}

}  // namespace detrq::runtime::passes
