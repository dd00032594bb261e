// `detrq build-engine`, the user pipeline: pull the prepared files from the Hub (or take local ones) and
// build an engine for this machine, as steps that describe themselves, can be skipped, and resume.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "detrq/engine/builder.h"
#include "detrq/pipeline/step_runner.h"

namespace detrq::pipeline {

struct BuildEngineOptions {
  std::string hf_repo;          // pull from this Hub repository ...
  std::string revision = "main";
  std::filesystem::path onnx;   // ... or use local files: FP32 ONNX (+ cache for TensorRT)
  std::filesystem::path cache;
  std::filesystem::path qdq;    // Q/DQ ONNX
  std::filesystem::path output = "model.engine";
  engine::Backend backend = engine::Backend::kAuto;
  std::string cpu_features;     // "" or "host": this machine's; else a list (see parse_cpu_features)
  std::filesystem::path work_dir;  // downloads and state; empty: <output>.d beside the output
  bool dry_run = false;
  bool force = false;
  int threads = 0;
};

struct BuildEngineOutcome {
  std::vector<Step> steps;
  std::vector<StepReport> reports;
  std::string description;  // dry-run text
  std::string built;        // what was built (empty when up to date or dry run)
};

std::vector<Step> build_engine_steps(const BuildEngineOptions& options, std::string* built = nullptr);
BuildEngineOutcome run_build_engine(const BuildEngineOptions& options);

}  // namespace detrq::pipeline
