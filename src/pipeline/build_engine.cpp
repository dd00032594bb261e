// The user pipeline (see build_engine.h): pull, then build.
#include "detrq/pipeline/build_engine.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/engine/cpu/cpu_features.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/hub/hub_client.h"
#include "detrq/onnx/model.h"
#include "detrq/quant/calibration_cache.h"

namespace detrq::pipeline {

namespace fs = std::filesystem;

std::vector<Step> build_engine_steps(const BuildEngineOptions& o, std::string* built) {
  const int sources = (!o.hf_repo.empty()) + (!o.onnx.empty() || !o.qdq.empty());
  if (sources != 1) {
    throw Error(ErrorKind::kUsage, "build-engine", "give either --hf-repo, or local files with --onnx/--qdq",
                "e.g. --hf-repo ORG/NAME, or --qdq inference_model.qdq.onnx");
  }
  if (!o.onnx.empty() && !o.qdq.empty()) throw Error(ErrorKind::kUsage, "build-engine", "give --onnx or --qdq, not both");
  if (!o.cache.empty() && o.onnx.empty()) throw Error(ErrorKind::kUsage, "--cache", "goes with --onnx");
  if (o.output.empty()) throw Error(ErrorKind::kUsage, "--output", "no engine file given");
  const fs::path work = o.work_dir.empty() ? fs::path(o.output.string() + ".d") : o.work_dir;

  // The backend is decided now so that the dry run says which one, and so the right files are pulled.
  const bool tensorrt = o.backend == engine::Backend::kTensorRt ||
                        (o.backend == engine::Backend::kAuto && engine::tensorrt_compiled());
  const std::vector<std::string> features = engine::cpu::parse_cpu_features(o.cpu_features.empty() ? "host" : o.cpu_features);

  engine::BuildRequest request;
  request.output = o.output;
  request.threads = o.threads;
  if (!tensorrt) request.cpu_features = features;
  std::vector<Step> steps;

  if (!o.hf_repo.empty()) {
    const fs::path local = work / "hub" / [&] {
      std::string s = o.hf_repo;
      for (auto& c : s) c = c == '/' ? '-' : c;
      return s + "@" + o.revision;
    }();
    std::vector<std::string> files = {"inference_model.qdq.onnx"};
    if (tensorrt) files.insert(files.end(), {"inference_model.onnx", "calibration.cache"});
    Step pull;
    pull.name = "pull";
    pull.description = fmt::format("download {} from the Hub into {} (through the Hub cache)", fmt::join(files, ", "), local.string());
    pull.parameters = {{"repo", o.hf_repo}, {"revision", o.revision}};
    for (const auto& f : files) pull.outputs.push_back(local / f);
    pull.command = fmt::format("hf download {} {} --revision {} --local-dir {}", o.hf_repo, fmt::join(files, " "), o.revision, local.string());
    pull.always_run = true;
    pull.run = [repo = o.hf_repo, rev = o.revision, files, local] {
      hub::HubClient client;
      client.snapshot_download(repo, rev, files, local);
    };
    steps.push_back(std::move(pull));
    request.qdq = local / "inference_model.qdq.onnx";
  } else {
    request.qdq = o.qdq;
    request.onnx = o.onnx;
    request.calibration_cache = o.cache;
    // The cache is read and checked now: a damaged one is refused before anything is built.
    if (!o.cache.empty()) (void)quant::read_calibration_cache(o.cache);
  }

  Step build;
  build.name = "build";
  build.description = tensorrt ? "build a TensorRT engine" : "build detrq's CPU engine for this machine";
  for (const auto& p : {request.qdq, request.onnx, request.calibration_cache})
    if (!p.empty()) build.inputs.push_back(p);
  std::string feature_list;
  for (const auto& f : features) feature_list += (feature_list.empty() ? "" : ",") + f;
  build.parameters = {{"backend", tensorrt ? "tensorrt" : "cpu"}, {"cpu_features", tensorrt ? "" : feature_list},
                      {"detrq", DETRQ_VERSION},
                      // A new engine format makes an existing engine stale even where the version string is not bumped.
                      {"engine_format", tensorrt ? "" : std::to_string(engine::cpu::kEngineFormatVersion)},
                      // Engines from before the states were packed for the requested target (not the host).
                      {"cpu_packing", tensorrt ? "" : "for-target"}};
  build.outputs = {o.output};
  build.command = fmt::format("detrq build-engine {} --output {} --backend {}{}",
                              !request.qdq.empty() ? "--qdq " + request.qdq.string() : "--onnx " + request.onnx.string(),
                              o.output.string(), tensorrt ? "tensorrt" : "cpu",
                              tensorrt ? "" : " --cpu-features " + (feature_list.empty() ? "none" : feature_list));
  build.run = [request, tensorrt, built] {
    // A --qdq model without Q/DQ nodes would build a float engine while the user asked for INT8.
    if (!request.qdq.empty()) {
      const onnx::Model model = onnx::load_model(request.qdq);
      const bool has_qdq = std::any_of(model.graph.nodes.begin(), model.graph.nodes.end(), [](const onnx::Node& n) {
        return n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear";
      });
      if (!has_qdq) {
        throw_invalid(request.qdq.string(), "has no QuantizeLinear or DequantizeLinear node: it is not a Q/DQ model",
                      "give a float model with --onnx, or make the Q/DQ model with detrq calibrate --qdq");
      }
    }
    auto builder = engine::make_builder(tensorrt ? engine::Backend::kTensorRt : engine::Backend::kCpu);
    const auto result = builder->build(request);
    core::log_info("{}", result.description);
    if (built) *built = result.description;
  };
  steps.push_back(std::move(build));
  return steps;
}

BuildEngineOutcome run_build_engine(const BuildEngineOptions& options) {
  BuildEngineOutcome out;
  out.steps = build_engine_steps(options, &out.built);
  const fs::path work = options.work_dir.empty() ? fs::path(options.output.string() + ".d") : options.work_dir;
  StepRunner runner(work / ".detrq-state.json");
  out.reports = runner.run(out.steps, RunOptions{options.dry_run, options.force});
  out.description = StepRunner::describe(out.steps, out.reports);
  return out;
}

}  // namespace detrq::pipeline
