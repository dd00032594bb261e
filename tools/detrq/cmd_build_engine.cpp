// `detrq build-engine`: pull a prepared model from the Hub (or take local files) and build an engine.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "command.h"
#include "detrq/pipeline/build_engine.h"

namespace detrq::cli {

void add_build_engine_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto o = std::make_shared<pipeline::BuildEngineOptions>();
  auto paths = std::make_shared<std::array<std::string, 5>>();  // onnx, cache, qdq, output, work
  auto backend = std::make_shared<std::string>("auto");
  (*paths)[3] = o->output.string();
  CLI::App* cmd = app.add_subcommand("build-engine", "Build an engine (CPU, or TensorRT where built in) from a prepared model");
  auto* repo = cmd->add_option("--hf-repo", o->hf_repo, "Hub repository ORG/NAME prepared by `detrq prepare`");
  cmd->add_option("--revision", o->revision, "Revision to pull")->capture_default_str();
  auto* onnx = cmd->add_option("--onnx", (*paths)[0], "FP32 ONNX (TensorRT: with --cache)");
  cmd->add_option("--cache", (*paths)[1], "TensorRT calibration cache for --onnx");
  auto* qdq = cmd->add_option("--qdq", (*paths)[2], "Q/DQ ONNX");
  repo->excludes(onnx)->excludes(qdq);
  cmd->add_option("--output", (*paths)[3], "Engine file to write")->capture_default_str();
  cmd->add_option("--backend", *backend, "auto | cpu | tensorrt")->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "tensorrt"}));
  cmd->add_option("--cpu-features", o->cpu_features,
                  "CPU engine: features to build for, e.g. avx2,fma ('host': this machine's, the default)");
  cmd->add_option("--work-dir", (*paths)[4], "Downloads and state (default: <output>.d)");
  cmd->add_flag("--dry-run", o->dry_run, "Print the steps; change nothing");
  cmd->add_flag("--force", o->force, "Rebuild even when up to date");
  cmd->add_option("--threads", o->threads, "Threads (0: one per core)")->check(count_validator());
  cmd->callback([&action, &global, o, paths, backend] {
    action = [&global, o, paths, backend] {
      o->onnx = (*paths)[0];
      o->cache = (*paths)[1];
      o->qdq = (*paths)[2];
      o->output = (*paths)[3];
      o->work_dir = (*paths)[4];
      o->backend = engine::parse_backend(*backend);
      const auto outcome = pipeline::run_build_engine(*o);
      if (global.json) {
        nlohmann::json j = {{"output", o->output.string()}, {"built", outcome.built}, {"steps", nlohmann::json::array()}};
        for (std::size_t i = 0; i < outcome.steps.size(); ++i) {
          j["steps"].push_back({{"name", outcome.steps[i].name},
                                {"status", pipeline::step_outcome_name(outcome.reports[i].outcome)},
                                {"reason", outcome.reports[i].reason}});
        }
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("%s", outcome.description.c_str());
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
