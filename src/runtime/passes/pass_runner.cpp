// Runs an ordered list of graph passes (see pass.h): each through one GraphEditor, checked afterwards
// when validation is on, so a pass that breaks the graph is named at once instead of failing later.
#include "runtime/passes/pass.h"

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "runtime/internal_domain.h"

namespace detrq::runtime::passes {
namespace {

bool gate_open(PassGate gate, const PassOptions& options) {
  switch (gate) {
    case PassGate::kAlways: return true;
    case PassGate::kQdqFusion: return options.fuse_qdq;
    case PassGate::kOperatorFusion: return options.fuse_operators;
    case PassGate::kQdqAndOperatorFusion: return options.fuse_qdq && options.fuse_operators;
  }
  return false;
}

}  // namespace

void import_internal_domain(onnx::Model& model) { model.opset_imports[kInternalDomain] = 1; }

std::vector<PassReport> run_passes(onnx::Model& model, const PassOptions& options, const std::vector<Pass>& list) {
  std::vector<PassReport> reports;
  for (const Pass& pass : list) {
    if (!gate_open(pass.gate, options)) continue;
    const std::string where = std::string("graph pass '") + pass.name + "'";
    const std::size_t before = model.graph.nodes.size();
    PassReport report;
    {
      onnx::GraphEditor editor(model.graph);
      PassContext ctx{model, editor, options.keep};
      report = pass.run(ctx);
      if (options.validate) editor.check_index(where);
    }  // the editor commits: removed nodes leave graph.nodes
    report.pass = pass.name;
    report.nodes_before = before;
    report.nodes_after = model.graph.nodes.size();
    if (options.validate) onnx::validate_graph(model.graph, where);
    core::log_debug("pass {}: {} rewritten, {} fused, {} removed", pass.name, report.rewritten, report.fused,
                    report.removed);
    reports.push_back(std::move(report));
  }
  return reports;
}

}  // namespace detrq::runtime::passes
