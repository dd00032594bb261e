// Running steps with records and resume (see step_runner.h). The state file holds, per step, the hashes
// of its inputs, parameters and outputs at its last completed run, plus the hasher's size/mtime cache.
#include "detrq/pipeline/step_runner.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <set>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"

namespace detrq::pipeline {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kStateVersion = 1;

struct StepRecord {
  std::map<std::string, std::string> inputs;   // path -> hash
  std::map<std::string, std::string> parameters;
  std::map<std::string, std::string> outputs;  // path -> hash
};

struct State {
  std::map<std::string, StepRecord> steps;
  std::map<std::string, ContentHasher::Entry> hashes;
};

State load_state(const fs::path& file) {
  State st;
  if (!fs::exists(file)) return st;
  json j;
  try {
    j = json::parse(core::read_file(file));
  } catch (const json::exception&) {
    // A state file that cannot be read only costs a re-run; it is rewritten at the next step.
    core::log_warn("{}: unreadable pipeline state, every step will run again", file.string());
    return st;
  }
  if (!j.is_object() || j.value("version", 0) != kStateVersion) return st;
  try {
    for (const auto& [name, r] : j.at("steps").items()) {
      StepRecord rec;
      rec.inputs = r.at("inputs").get<std::map<std::string, std::string>>();
      rec.parameters = r.at("parameters").get<std::map<std::string, std::string>>();
      rec.outputs = r.at("outputs").get<std::map<std::string, std::string>>();
      st.steps[name] = std::move(rec);
    }
    for (const auto& [path, e] : j.at("hashes").items()) {
      st.hashes[path] = ContentHasher::Entry{e.at("size").get<uintmax_t>(), e.at("mtime_ns").get<int64_t>(),
                                             e.at("sha256").get<std::string>()};
    }
  } catch (const json::exception&) {
    core::log_warn("{}: malformed pipeline state, every step will run again", file.string());
    return State{};
  }
  return st;
}

void save_state(const fs::path& file, const State& st) {
  json j = {{"version", kStateVersion}, {"steps", json::object()}, {"hashes", json::object()}};
  for (const auto& [name, r] : st.steps) {
    j["steps"][name] = {{"inputs", r.inputs}, {"parameters", r.parameters}, {"outputs", r.outputs}};
  }
  for (const auto& [path, e] : st.hashes) {
    j["hashes"][path] = {{"size", e.size}, {"mtime_ns", e.mtime_ns}, {"sha256", e.sha256}};
  }
  if (!file.parent_path().empty()) fs::create_directories(file.parent_path());
  core::write_file_atomic(file, j.dump(1));
}

std::string key(const fs::path& p) { return p.lexically_normal().generic_string(); }

// Why the step must run, or "" when it is up to date. `pending` holds outputs of earlier steps that
// would run in a dry run (their contents are not known yet).
std::string staleness(const Step& step, const std::map<std::string, StepRecord>& records, ContentHasher& hasher,
                      const std::set<std::string>& pending) {
  auto it = records.find(step.name);
  if (it == records.end()) return "no record of a completed run";
  const StepRecord& rec = it->second;
  if (rec.parameters != step.parameters) return "parameters changed";
  for (const auto& in : step.inputs) {
    if (pending.count(key(in))) return "its input " + in.string() + " is produced by a step that runs first";
    if (!fs::exists(in)) return "input missing: " + in.string();
    auto r = rec.inputs.find(key(in));
    if (r == rec.inputs.end() || r->second != hasher.hash(in)) return "input changed: " + in.string();
  }
  if (rec.inputs.size() != step.inputs.size()) return "inputs changed";
  for (const auto& out : step.outputs) {
    if (!fs::exists(out)) return "output missing: " + out.string();
    auto r = rec.outputs.find(key(out));
    if (r == rec.outputs.end() || r->second != hasher.hash(out)) return "output changed since: " + out.string();
  }
  return {};
}

}  // namespace

const char* step_outcome_name(StepOutcome outcome) noexcept {
  switch (outcome) {
    case StepOutcome::kRan: return "ran";
    case StepOutcome::kUpToDate: return "up to date";
    case StepOutcome::kSkipped: return "skipped";
    case StepOutcome::kWouldRun: return "would run";
  }
  return "?";
}

StepRunner::StepRunner(fs::path state_file) : state_file_(std::move(state_file)) {}

std::vector<StepReport> StepRunner::run(const std::vector<Step>& steps, const RunOptions& options) {
  State state = load_state(state_file_);
  ContentHasher hasher;
  hasher.set_cache(state.hashes);
  std::set<std::string> pending;  // dry run: outputs of steps that would run
  std::vector<StepReport> reports;

  for (const Step& step : steps) {
    StepReport report;
    report.name = step.name;
    if (step.skip) {
      report.outcome = StepOutcome::kSkipped;
      report.reason = step.skip_reason;
      if (step.skipped_outputs_required) {
        for (const auto& out : step.outputs) {
          if (fs::exists(out) || pending.count(key(out))) continue;
          if (options.dry_run) {
            report.reason += " (but " + out.string() + " is missing: the run would stop here)";
            continue;
          }
          throw Error(ErrorKind::kUsage, out.string(),
                      "step '" + step.name + "' is skipped (" + step.skip_reason + ") but its output is missing",
                      "run without that flag, or provide the file");
        }
      }
      reports.push_back(report);
      continue;
    }

    std::string why = options.force ? "forced"
                      : step.always_run ? "always runs"
                                        : staleness(step, state.steps, hasher, pending);
    if (why.empty()) {
      report.outcome = StepOutcome::kUpToDate;
      reports.push_back(report);
      core::log_info("[{}] up to date", step.name);
      continue;
    }
    report.reason = why;
    if (options.dry_run) {
      report.outcome = StepOutcome::kWouldRun;
      for (const auto& out : step.outputs) pending.insert(key(out));
      reports.push_back(report);
      continue;
    }

    for (const auto& in : step.inputs) {
      if (!fs::exists(in)) {
        throw_io(in.string(), "input of step '" + step.name + "' is missing",
                 "an earlier step should have produced it; check the paths given on the command line");
      }
    }
    core::log_info("[{}] {} ({})", step.name, step.description, why);
    const auto start = std::chrono::steady_clock::now();
    if (step.run) step.run();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.outcome = StepOutcome::kRan;

    StepRecord rec;
    rec.parameters = step.parameters;
    for (const auto& in : step.inputs) rec.inputs[key(in)] = hasher.hash(in);
    for (const auto& out : step.outputs) {
      if (!fs::exists(out)) {
        throw Error(ErrorKind::kInternal, out.string(), "step '" + step.name + "' finished without writing its output",
                    "a bug in the step");
      }
      rec.outputs[key(out)] = hasher.hash(out);
    }
    state.steps[step.name] = std::move(rec);
    state.hashes = hasher.cache();
    save_state(state_file_, state);
    reports.push_back(report);
  }
  return reports;
}

std::string StepRunner::describe(const std::vector<Step>& steps, const std::vector<StepReport>& reports) {
  std::string out;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    std::string status;
    if (i < reports.size()) {
      status = step_outcome_name(reports[i].outcome);
      if (!reports[i].reason.empty()) status += ": " + reports[i].reason;
    }
    out += fmt::format("{}. {}{}\n", i + 1, s.name, status.empty() ? "" : " [" + status + "]");
    out += fmt::format("   {}\n", s.description);
    for (const auto& in : s.inputs) out += fmt::format("   input:     {}\n", in.string());
    for (const auto& [k, v] : s.parameters) out += fmt::format("   parameter: {} = {}\n", k, v);
    for (const auto& o : s.outputs) out += fmt::format("   output:    {}\n", o.string());
    if (!s.command.empty()) out += fmt::format("   command:   {}\n", s.command);
  }
  return out;
}

}  // namespace detrq::pipeline
