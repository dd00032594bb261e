// What a graph pass is: a function that rewrites the plan's graph through the graph layer
// (onnx::GraphEditor) and says what it changed. The passes the Session runs, in order, are listed in
// pass_list.def; pass_runner.cpp runs them, checks the graph after each in debug builds and tests, and
// reports per pass what changed (`detrq inspect --passes`).
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "detrq/onnx/graph_editor.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace detrq::runtime::passes {

struct PassContext {
  onnx::Model& model;
  onnx::GraphEditor& graph;               // model.graph, indexed
  const std::set<std::string>& keep;      // tensors an observer must see: never fused or folded away
};

// A pass's own account of what it did (PassReport in session.h adds the node counts around it).
using PassChanges = PassReport;

// Which SessionOptions switch turns a pass on.
enum class PassGate { kAlways, kQdqFusion, kOperatorFusion, kQdqAndOperatorFusion };

struct Pass {
  const char* name;  // kebab-case, as `detrq inspect --passes` prints it
  PassGate gate;
  PassChanges (*run)(PassContext& ctx);
};

// The Session's passes in the order they run (pass_list.def).
const std::vector<Pass>& session_passes();
// The pass of that name in session_passes() (kInternal when there is none).
const Pass& find_pass(const std::string& name);

struct PassOptions {
  bool fuse_qdq = true;
  bool fuse_operators = true;
  std::set<std::string> keep;
  // Check the graph and its index after each pass, naming the pass that broke it (kInternal).
#ifdef NDEBUG
  bool validate = false;
#else
  bool validate = true;
#endif
};

// Runs `list` over `model` (the gates decide which run) and returns one report per pass that ran.
std::vector<PassReport> run_passes(onnx::Model& model, const PassOptions& options,
                                   const std::vector<Pass>& list = session_passes());

// Internal nodes of com.detrq are in the plan: import the domain so the kernels are found.
void import_internal_domain(onnx::Model& model);

}  // namespace detrq::runtime::passes
