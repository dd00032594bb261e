// Runs a sequence of steps with resume: a step runs only when it has no record, when its inputs or
// parameters hashed differently at its last run, or when an output is missing or was changed since.
// Records live in a JSON state file written atomically after each step, so an interrupted run resumes
// at the step it was in.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "detrq/pipeline/content_hash.h"
#include "detrq/pipeline/step.h"

namespace detrq::pipeline {

enum class StepOutcome {
  kRan,       // the step ran to completion
  kUpToDate,  // nothing to do: same inputs, outputs intact
  kSkipped,   // a --skip flag said so
  kWouldRun,  // dry run: it would run
};

const char* step_outcome_name(StepOutcome outcome) noexcept;

struct StepReport {
  std::string name;
  StepOutcome outcome = StepOutcome::kRan;
  std::string reason;  // why it ran or would run ("no record", "input changed: model.onnx", ...)
  double seconds = 0.0;
};

struct RunOptions {
  bool dry_run = false;  // describe every step and what it would do; touch nothing
  bool force = false;    // run every step that is not skipped, whatever the records say
};

class StepRunner {
 public:
  // `state_file` is created on the first step that completes (its folder too).
  explicit StepRunner(std::filesystem::path state_file);

  // Runs the steps in order, or with dry_run only decides what each would do (reading, never writing).
  // A step's exception propagates after the records of the steps before it are saved. A skipped step
  // whose outputs are required but missing is a usage error naming the flag and the file.
  std::vector<StepReport> run(const std::vector<Step>& steps, const RunOptions& options = {});

  // The dry-run text: per step its name, what it would do and why, description, inputs, parameters,
  // outputs and command. `reports` (from a dry run) may be empty.
  static std::string describe(const std::vector<Step>& steps, const std::vector<StepReport>& reports);

  const std::filesystem::path& state_file() const noexcept { return state_file_; }

 private:
  std::filesystem::path state_file_;
};

}  // namespace detrq::pipeline
