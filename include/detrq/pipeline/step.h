// One step of a pipeline: what it reads, what it writes, the equivalent command, and the work itself.
// Steps describe themselves (dry run), can be skipped, and are re-run only when missing or stale.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace detrq::pipeline {

struct Step {
  std::string name;         // short and stable: it keys the step's record in the state file
  std::string description;  // one line, for the dry run
  // Files or folders whose contents decide whether the step is stale. They may not exist yet when an
  // earlier step produces them.
  std::vector<std::filesystem::path> inputs;
  // Settings that change the result (method, image count, ...): part of the staleness hash.
  std::map<std::string, std::string> parameters;
  // Files or folders the step produces; all must exist for the step to be up to date.
  std::vector<std::filesystem::path> outputs;
  std::string command;  // the equivalent command line a person could run, shown in the dry run
  // Set by a --skip-... flag: the step does not run; `skip_reason` names the flag.
  bool skip = false;
  std::string skip_reason;
  // When skipped, whether its outputs must already exist (a skipped export needs the ONNX to be there;
  // a skipped upload produces nothing anyone downstream needs).
  bool skipped_outputs_required = true;
  // Runs every time (unless skipped): for steps whose freshness is decided elsewhere, such as a Hub
  // download, where the Hub resolves the revision and the client's cache makes a repeat cheap.
  bool always_run = false;
  std::function<void()> run;  // does the work; writes its outputs atomically
};

}  // namespace detrq::pipeline
