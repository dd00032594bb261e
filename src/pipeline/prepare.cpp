// The maintainer pipeline (see prepare.h): each step is a plain library call over files in the work
// folder, so that the step framework can decide what is stale and a test can run any part of it.
#include "detrq/pipeline/prepare.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <tuple>
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"
#include "detrq/hub/hub_client.h"
#include "detrq/onnx/model.h"
#include "detrq/pipeline/content_hash.h"
#include "detrq/pipeline/evaluate.h"
#include "detrq/pipeline/model_card.h"
#include "detrq/quant/calibrate.h"
#include "detrq/vision/calibration_tensors.h"
#include "detrq/vision/coco_fetcher.h"

extern char** environ;

namespace detrq::pipeline {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kShippedModel = "models/rfdetr_shapes.onnx";
constexpr const char* kShippedCalibration = "data/shapes_calib";
constexpr const char* kShippedValidation = "data/shapes_val";

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string p = path;
  std::size_t start = 0;
  while (start <= p.size()) {
    const std::size_t end = p.find(':', start);
    const std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty() && ::access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

// A word as a POSIX shell reads it back: plain when it holds only characters no shell treats specially
// (no globs, no quotes, no spaces), else single-quoted.
std::string quote(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || std::strchr("_./:=,+-@%", c) != nullptr;
  });
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += quote(a);
  }
  return out;
}

// Runs a program with inherited stdout/stderr; a non-zero exit is an error naming the command.
void run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) {
    throw_io(argv[0], "could not start", "is it installed and on PATH?");
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_io(argv[0], "lost track of the child process");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error(ErrorKind::kFailure, join_command(argv),
                WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status)) : "was killed by a signal",
                "see its messages above");
  }
}

json metrics_json(const vision::CocoMetrics& m) {
  json j = json::object();
  const auto values = m.as_array();
  for (std::size_t i = 0; i < values.size(); ++i) j[vision::CocoMetrics::names()[i]] = values[i];
  return j;
}

vision::CocoMetrics metrics_from(const json& j) {
  vision::CocoMetrics m;
  std::array<double*, 12> fields = {&m.ap, &m.ap50, &m.ap75, &m.ap_small, &m.ap_medium, &m.ap_large,
                                    &m.ar1, &m.ar10, &m.ar100, &m.ar_small, &m.ar_medium, &m.ar_large};
  for (std::size_t i = 0; i < 12; ++i) *fields[i] = j.value(vision::CocoMetrics::names()[i], -1.0);
  return m;
}

struct Resolved {
  fs::path work;
  fs::path model;          // the FP32 ONNX every later step reads
  bool export_needed = false;
  std::string export_skip_reason;
  fs::path calibration_images;
  std::string calibration_source;  // as the model card names it: shipped sets by their name, not their path
  bool download = true;
  std::string download_skip_reason;
  fs::path eval_images;
  fs::path eval_annotations;
  std::string eval_name;
};

// A folder as a dataset name a Hub reader can know: its last component, never a path of this machine.
std::string dataset_name(const fs::path& dir) {
  fs::path p = dir.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string name = p.filename().string();
  return name.empty() || name == "." || name == ".." ? std::string("a local image folder") : name;
}

std::string shipped_folder_name() {
  const fs::path dir = shipped_data_dir();
  return dir.empty() ? std::string("share/detrq beside the detrq executable (not there)") : dir.string();
}

Resolved resolve(const PrepareOptions& o) {
  Resolved r;
  r.work = o.work_dir;
  // The shipped model is the default only without --hf-repo: what is published is what the seed pipeline
  // publishes, RF-DETR exported from PyTorch (--model-variant small unless told otherwise).
  const bool asked_for_export = !o.model_variant.empty() || !o.checkpoint.empty() || !o.hf_repo.empty();
  const bool shipped = o.onnx.empty() && !asked_for_export && !o.skip_export;
  if (!o.onnx.empty()) {
    r.model = o.onnx;
    r.export_skip_reason = "--onnx given";
    // Checked before any step runs (a download of calibration images must not come first).
    if (!fs::is_regular_file(o.onnx)) throw_io(o.onnx.string(), "does not exist", "--onnx takes an FP32 ONNX model file");
    (void)onnx::load_model(o.onnx);
  } else if (o.skip_export) {
    r.model = r.work / "inference_model.onnx";
    r.export_skip_reason = "--skip-export";
  } else if (shipped) {
    r.model = find_shipped_file(kShippedModel);
    if (r.model.empty()) {
      throw Error(ErrorKind::kIo, kShippedModel, "the shipped model was not found in " + shipped_folder_name(),
                  "reinstall detrq, or pass --onnx PATH or --model-variant small");
    }
    r.export_skip_reason = std::string("using the model the project ships, ") + kShippedModel;
  } else {
    r.model = r.work / "inference_model.onnx";
    r.export_needed = true;
  }

  const bool download_asked = !o.calibration_base_url.empty() || !o.calibration_ids.empty();
  if (!o.calibration_dir.empty()) {
    r.calibration_images = o.calibration_dir;
    r.calibration_source = dataset_name(o.calibration_dir);
    r.download = false;
    r.download_skip_reason = "--calibration-dir given";
  } else if (shipped && !download_asked) {
    r.calibration_images = find_shipped_file(kShippedCalibration);
    if (r.calibration_images.empty()) {
      throw Error(ErrorKind::kIo, kShippedCalibration, "the shipped calibration images were not found in " + shipped_folder_name(),
                  "reinstall detrq, or pass --calibration-dir DIR");
    }
    r.calibration_source = "shapes_calib (procedural shapes, shipped with detrq)";
    r.download = false;
    r.download_skip_reason = std::string("using the calibration images the project ships, ") + kShippedCalibration;
  } else {
    r.calibration_images = r.work / "calibration_images";
    r.calibration_source = o.calibration_base_url.empty() ? "COCO val2017" : o.calibration_base_url;
    if (o.skip_calibration_download) {
      r.download = false;
      r.download_skip_reason = "--skip-calibration-download";
    }
  }

  // The evaluation set is checked now, before any step runs: a wrong path is never ignored.
  if (!o.eval_images.empty() && !fs::is_directory(o.eval_images)) {
    throw_io(o.eval_images.string(), "is not a folder", "--eval-images takes the folder of the evaluation images");
  }
  if (!o.eval_annotations.empty() && !fs::is_regular_file(o.eval_annotations)) {
    throw_io(o.eval_annotations.string(), "does not exist", "--eval-annotations takes a COCO instances.json");
  }
  if (o.eval_annotations.empty() && !o.eval_images.empty()) {
    if (!fs::is_regular_file(o.eval_images / "instances.json")) {
      throw Error(ErrorKind::kUsage, "--eval-images", o.eval_images.string() + " holds no instances.json",
                  "give its COCO annotations with --eval-annotations");
    }
    r.eval_images = o.eval_images;
    r.eval_annotations = o.eval_images / "instances.json";
    r.eval_name = dataset_name(r.eval_images);
  } else if (!o.eval_annotations.empty()) {
    r.eval_annotations = o.eval_annotations;
    r.eval_images = o.eval_images.empty() ? o.eval_annotations.parent_path() : o.eval_images;
    r.eval_name = dataset_name(r.eval_images);
    check_annotated_images_exist(r.eval_images, r.eval_annotations);  // before hours of work, not after
  } else if (shipped) {
    const fs::path val = find_shipped_file(kShippedValidation);
    if (!val.empty() && fs::exists(val / "instances.json")) {
      r.eval_images = val;
      r.eval_annotations = val / "instances.json";
      r.eval_name = "shapes_val (procedural shapes, shipped with detrq)";
    }
  }
  return r;
}

// The Python the export runs under: `uv run` when uv is on PATH (as the export itself), else python3.
std::vector<std::string> python_command() {
  if (on_path("uv")) return {"uv", "run", "python"};
  return {"python3"};
}

// Which of the export's Python packages that Python has, found without importing them (importing torch
// takes seconds): "torch installed, rfdetr not installed, ...", or why it could not be asked.
std::string export_packages_status(const std::vector<std::string>& python) {
  static const std::array<const char*, 3> kPackages = {"torch", "rfdetr", "transformers"};
  std::vector<std::string> argv = python;
  argv.insert(argv.end(), {"-c", "import importlib.util as u, sys\n"
                                 "sys.exit(sum(1 << i for i, m in enumerate(sys.argv[1:]) if u.find_spec(m) is None))"});
  for (const char* p : kPackages) argv.emplace_back(p);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&quiet, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &quiet, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&quiet);
  if (spawned != 0) return python.front() + " not found";
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) >= (1 << kPackages.size())) return "could not ask " + join_command(python);
  std::string out;
  for (std::size_t i = 0; i < kPackages.size(); ++i) {
    const bool missing = (WEXITSTATUS(status) >> i) & 1;
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", kPackages[i], missing ? "NOT installed" : "installed");
  }
  return out;
}

// Step 1: the PyTorch export to ONNX through scripts/export_onnx.py (shipped beside detrq).
Step export_step(const PrepareOptions& o, const Resolved& r) {
  const std::string variant = o.model_variant.empty() ? "small" : o.model_variant;
  Step s;
  s.name = "export";
  s.description = "export RF-DETR " + (o.checkpoint.empty() ? variant : o.checkpoint) +
                  " from PyTorch to ONNX (input 1x3x512x512, outputs dets and labels)";
  s.outputs = {r.model};
  const fs::path script = find_shipped_file("scripts/export_onnx.py");
  std::vector<std::string> argv = on_path("uv") ? std::vector<std::string>{"uv", "run"} : std::vector<std::string>{"python3"};
  argv.push_back(script.empty() ? "scripts/export_onnx.py" : script.string());
  argv.insert(argv.end(), {"--output", r.model.string(), "--model-variant", variant});
  if (!o.checkpoint.empty()) argv.insert(argv.end(), {"--checkpoint", o.checkpoint});
  s.parameters = {{"model_variant", variant}, {"checkpoint", o.checkpoint}};
  s.command = join_command(argv);
  s.skip = !r.export_needed;
  s.skip_reason = r.export_skip_reason;
  if (r.export_needed) {
    const std::vector<std::string> python = python_command();
    s.description += "; needs PyTorch with rfdetr or transformers (" + join_command(python) + ": " +
                     export_packages_status(python) + ")";
    if (script.empty()) s.description += "; the export script is missing from " + shipped_folder_name();
  }
  s.run = [argv, script, model = r.model] {
    if (script.empty()) {
      throw Error(ErrorKind::kIo, "scripts/export_onnx.py", "the export script was not found in " + shipped_folder_name(),
                  "reinstall detrq, or pass --onnx PATH");
    }
    if (!model.parent_path().empty()) fs::create_directories(model.parent_path());
    run_program(argv);
  };
  return s;
}

}  // namespace

std::vector<Step> prepare_steps(const PrepareOptions& o) {
  if (o.hf_repo.empty() && !o.skip_upload) {
    throw Error(ErrorKind::kUsage, "prepare", "--hf-repo ORG/NAME is required to upload",
                "pass --hf-repo, or --skip-upload to prepare the files only");
  }
  if (o.calibration_images < -1) {
    throw Error(ErrorKind::kUsage, "--calibration-images", "must be 0 (all) or a positive count");
  }
  const quant::CalibrationMethod method = o.calibration.method;
  const Resolved r = resolve(o);
  // 0: every image (of the id list, or of the local folder).
  const int wanted = o.calibration_images >= 0 ? o.calibration_images : (r.download ? 100 : 0);
  const std::string wanted_text = wanted > 0 ? std::to_string(wanted) : std::string("all");
  const fs::path work = r.work;
  const fs::path tensors = work / "calibration_tensors";
  const fs::path cache = work / "calibration.cache";
  const fs::path qdq = work / "inference_model.qdq.onnx";
  const fs::path table = work / "calibration.json";
  const fs::path report = work / "report.html";
  // What is published: (local file, name in the repository, what the card says it is).
  const std::vector<std::tuple<fs::path, std::string, std::string>> published = {
      {r.model, "inference_model.onnx", "FP32 ONNX export (opset 17)"},
      {work / "calibration.cache", "calibration.cache", "TensorRT calibration cache (TensorRT up to 10, with the FP32 ONNX)"},
      {work / "inference_model.qdq.onnx", "inference_model.qdq.onnx", "explicitly quantized ONNX (TensorRT 10 and 11, onnxruntime)"},
      {work / "calibration.json", "calibration.json", "calibration table: per-tensor ranges and scales, per-layer precision"},
      {report, "report.html", "calibration report: precision decisions, ranges, histograms, INT8 against FP32"}};
  const fs::path accuracy = work / "accuracy.json";
  const fs::path card = work / "README.md";
  const int threads = o.threads;
  std::vector<Step> steps;

  steps.push_back(export_step(o, r));

  // 2. Calibration images.
  {
    Step s;
    s.name = "fetch-calibration-images";
    s.description = fmt::format("download {} calibration images ({})", wanted_text,
                                o.calibration_base_url.empty() ? "COCO val2017" : o.calibration_base_url);
    if (!o.calibration_ids.empty()) s.inputs = {o.calibration_ids};
    s.parameters = {{"count", std::to_string(wanted)},
                    {"base_url", o.calibration_base_url.empty() ? std::string(vision::kCocoVal2017BaseUrl) : o.calibration_base_url}};
    s.outputs = {r.calibration_images};
    s.command = fmt::format("detrq fetch-calibration --count {} --output-dir {}{}{}", wanted,
                            quote(r.calibration_images.string()),
                            o.calibration_ids.empty() ? "" : " --ids " + quote(o.calibration_ids.string()),
                            o.calibration_base_url.empty() ? "" : " --base-url " + quote(o.calibration_base_url));
    s.skip = !r.download;
    s.skip_reason = r.download_skip_reason;
    s.run = [o, wanted, dir = r.calibration_images] {
      vision::FetchOptions f;
      if (!o.calibration_ids.empty()) f.ids = vision::read_id_list(o.calibration_ids);
      f.count = wanted;
      f.output_dir = dir;
      if (!o.calibration_base_url.empty()) f.base_url = o.calibration_base_url;
      const auto summary = vision::fetch_calibration_images(f);
      if (!summary.complete()) {
        std::string first = summary.failures.empty() ? "" : " (first failure: " + summary.failures.front() + ")";
        throw Error(ErrorKind::kNetwork, dir.string(),
                    fmt::format("only {} of {} calibration images could be fetched{}", summary.present(), summary.requested, first),
                    "check the network and --calibration-base-url; a re-run resumes");
      }
    };
    steps.push_back(std::move(s));
  }

  // 3. Calibration tensors.
  {
    Step s;
    s.name = "calibration-tensors";
    s.description = "decode and letterbox the calibration images into 1x3x512x512 float32 tensors";
    s.inputs = {r.calibration_images};
    s.parameters = {{"count", std::to_string(wanted)}, {"size", "512"}};
    s.outputs = {tensors};
    s.command = fmt::format("detrq tensors --input-dir {} --output-dir {} --count {}", quote(r.calibration_images.string()),
                            quote(tensors.string()), wanted);
    s.run = [images = r.calibration_images, tensors, count = wanted, threads] {
      vision::CalibrationTensorsOptions t;
      t.input_dir = images;
      t.output_dir = tensors;
      t.count = count;
      t.threads = threads;
      const auto summary = vision::write_calibration_tensors(t);
      if (summary.total() == 0) {
        throw Error(ErrorKind::kFailure, images.string(), "no calibration tensor could be made", "are there JPEG or PNG images?");
      }
      // A shortfall fails (exit 1): fewer usable images than asked, or, asked for all, any that is unusable.
      if ((count > 0 && summary.total() < count) || (count == 0 && summary.failed > 0)) {
        const std::string first = summary.failures.empty() ? "" : " (first: " + summary.failures.front() + ")";
        throw Error(ErrorKind::kFailure, images.string(),
                    count > 0 ? fmt::format("only {} usable calibration images of the {} asked for{}", summary.total(), count, first)
                              : fmt::format("{} of its images could not be used{}", summary.failed, first),
                    "replace or remove the unusable images, or ask for fewer with --calibration-images");
      }
    };
    steps.push_back(std::move(s));
  }

  // 4. Calibration.
  {
    Step s;
    s.name = "calibrate";
    s.description = "collect activation statistics with detrq's runtime; write the TensorRT cache, the Q/DQ model, "
                    "the calibration table and the report";
    s.inputs = {r.model, tensors};
    s.parameters = {{"method", quant::method_name(method)}};
    std::string flags;
    for (const auto& a : o.calibration_args) flags += " " + quote(a);
    // The flags as given, in the parameters too: a change reruns the step.
    if (!flags.empty()) s.parameters["calibrate_flags"] = flags.substr(1);
    s.outputs = {cache, qdq, table, report};
    s.command = fmt::format("detrq calibrate --onnx {} --tensors {} --cache {} --qdq {} --table {} --report {}{}",
                            quote(r.model.string()), quote(tensors.string()), quote(cache.string()), quote(qdq.string()),
                            quote(table.string()), quote(report.string()), flags);
    s.run = [template_options = o.calibration, model = r.model, tensors, cache, qdq, table, report, threads] {
      quant::CalibrateOptions c = template_options;
      c.onnx = model;
      c.source = quant::tensor_folder_source(tensors);
      c.cache_path = cache;
      c.qdq_out = qdq;
      c.table_path = table;
      c.report_path = report;
      c.threads = threads;
      quant::calibrate(c);
    };
    steps.push_back(std::move(s));
  }

  // 5. Accuracy, INT8 against FP32, when there is an evaluation set.
  const bool measure = !r.eval_annotations.empty();
  {
    Step s;
    s.name = "evaluate";
    s.description = "COCO AP of the FP32 and the Q/DQ model, both run by detrq, on the evaluation images";
    s.inputs = {r.model, qdq};
    if (measure) s.inputs.insert(s.inputs.end(), {r.eval_images, r.eval_annotations});
    s.outputs = {accuracy};
    s.command = fmt::format("detrq eval --onnx {} --compare {} --images {} --annotations {}", quote(r.model.string()),
                            quote(qdq.string()), quote(r.eval_images.string()), quote(r.eval_annotations.string()));
    s.skip = !measure;
    s.skip_reason = "no evaluation set (--eval-annotations)";
    s.skipped_outputs_required = false;
    s.run = [model = r.model, qdq, images = r.eval_images, annotations = r.eval_annotations, name = r.eval_name, accuracy,
             threads] {
      EvaluationOptions eo;
      eo.threads = threads;
      const Evaluation fp32 = evaluate_model(model, images, annotations, eo);
      const Evaluation int8 = evaluate_model(qdq, images, annotations, eo);
      json j = {{"dataset", name},
                {"images", fp32.images},
                {"runtime", std::string("detrq ") + DETRQ_VERSION + " CPU runtime"},
                {"fp32", metrics_json(fp32.metrics)},
                {"int8", metrics_json(int8.metrics)}};
      core::write_file_atomic(accuracy, j.dump(2));
      core::log_info("AP FP32 {:.4f}, INT8 {:.4f} (INT8 - FP32 {:+.4f})", fp32.metrics.ap, int8.metrics.ap,
                     int8.metrics.ap - fp32.metrics.ap);
    };
    steps.push_back(std::move(s));
  }

  // 6. Model card.
  {
    Step s;
    s.name = "model-card";
    s.description = "write the README.md model card (metadata, files, how to build and run, measured accuracy)";
    s.inputs = {r.model, cache, qdq, table, report};
    if (measure) s.inputs.push_back(accuracy);
    s.parameters = {{"repo", o.hf_repo}, {"license", o.license}, {"method", quant::method_name(method)},
                    {"calibration_source", r.calibration_source}};
    s.outputs = {card};
    s.run = [o, r, published, table, accuracy, card, measure, method] {
      ModelCardInfo info;
      info.repo_id = o.hf_repo.empty() ? "ORG/NAME" : o.hf_repo;
      info.title = o.hf_repo.empty() ? "RF-DETR, INT8-ready" : o.hf_repo.substr(o.hf_repo.find('/') + 1);
      info.license = o.license;
      info.calibration_method = quant::method_name(method);
      describe_run(info, table, r.model);  // images calibrate used, shapes the model declares
      info.calibration_source = r.calibration_source;
      info.detrq_version = DETRQ_VERSION;
      const json calibration = json::parse(core::read_file(table), nullptr, false);
      if (calibration.is_object() && calibration.contains("int8_mac_share")) {
        info.int8_mac_share = calibration.at("int8_mac_share").get<double>();
      }
      for (const auto& [path, name, what] : published) {
        info.files.push_back({name, what, static_cast<uint64_t>(fs::file_size(path)), sha256_file(path)});
      }
      if (measure) {
        const json a = json::parse(core::read_file(accuracy));
        AccuracyFigures fig;
        fig.dataset = fmt::format("{} ({} images)", a.at("dataset").get<std::string>(), a.at("images").get<int>());
        fig.runtime = a.at("runtime").get<std::string>();
        fig.fp32 = metrics_from(a.at("fp32"));
        fig.int8 = metrics_from(a.at("int8"));
        info.accuracy = fig;
      }
      core::write_file_atomic(card, render_model_card(info));
    };
    steps.push_back(std::move(s));
  }

  // 7. Upload.
  {
    Step s;
    s.name = "upload";
    s.description = "commit the files and the model card to the Hub repository " + (o.hf_repo.empty() ? "(none)" : o.hf_repo);
    std::vector<hub::UploadItem> items;
    for (const auto& [path, name, what] : published) items.push_back({path, name});
    items.push_back({card, "README.md"});
    for (const auto& item : items) s.inputs.push_back(item.local);
    s.parameters = {{"repo", o.hf_repo}, {"revision", o.revision}};
    if (o.is_private) s.parameters["private"] = "true";
    if (o.message != PrepareOptions{}.message) s.parameters["message"] = o.message;
    s.command = fmt::format("detrq publish --hf-repo {} --revision {}{} --message {}", o.hf_repo.empty() ? "ORG/NAME" : o.hf_repo,
                            quote(o.revision), o.is_private ? " --private" : "", quote(o.message));
    for (const auto& item : items) s.command += " --file " + quote(item.local.string() + ":" + item.path_in_repo);
    s.skip = o.skip_upload;
    s.skip_reason = "--skip-upload";
    s.skipped_outputs_required = false;
    s.run = [o, items] {
      hub::HubClient client;
      client.create_repo(o.hf_repo, o.is_private);
      const auto commit = client.upload_files(o.hf_repo, items, o.message, o.revision);
      core::log_info("uploaded to {} (commit {})", o.hf_repo, commit.commit);
    };
    steps.push_back(std::move(s));
  }
  // A skipped step has no equivalent command: what it would run is not what this run does (the export of
  // a model given with --onnx would overwrite it, a download of images given locally is no download).
  // A parameter without a value says nothing ("base_url = "): only those with one are shown and recorded.
  for (Step& step : steps) {
    if (step.skip) step.command.clear();
    std::erase_if(step.parameters, [](const auto& p) { return p.second.empty(); });
  }
  return steps;
}

PrepareOutcome run_prepare(const PrepareOptions& options) {
  PrepareOutcome out;
  out.steps = prepare_steps(options);
  out.work_dir = options.work_dir;
  StepRunner runner(options.work_dir / ".detrq-state.json");
  out.reports = runner.run(out.steps, RunOptions{options.dry_run, options.force});
  out.description = StepRunner::describe(out.steps, out.reports);
  return out;
}

}  // namespace detrq::pipeline
