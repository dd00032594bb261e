// detrq calibrate: INT8 calibration on the CPU; writes the TensorRT cache, calibration.json, the Q/DQ
// model and the report, then prints INT8 against FP32 on held-out tensors.
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/quant/calibrate.h"
#include "detrq/vision/calibration_tensors.h"
#include "detrq/vision/image_decoder.h"
#include "detrq/vision/letterbox_transform.h"

namespace detrq::cli {
namespace {

// Images decoded and letterboxed exactly as `detrq tensors` does, one at a time.
quant::CalibrationSource image_folder_source(const std::filesystem::path& dir) {
  quant::CalibrationSource source;
  source.description = dir.string();
  auto files = std::make_shared<std::vector<std::filesystem::path>>(vision::list_calibration_images(dir));
  for (const auto& f : *files) source.names.push_back(f.filename().string());
  source.load = [files](std::size_t i, const core::Shape& shape) {
    if (shape.size() != 4 || shape[0] != 1 || shape[1] != 3 || shape[2] != shape[3]) {
      throw_unsupported("--images", "the model input " + core::shape_to_string(shape) + " is not 1x3xSxS",
                        "give preprocessed tensors with --tensors");
    }
    vision::LetterboxTransform letterbox(static_cast<int>(shape[2]));
    return letterbox.apply(vision::decode_image(files->at(i))).chw;
  };
  return source;
}

// A budget option's value: a finite, non-negative number (`flag` and `hint` for the error).
double parse_budget(const char* flag, const std::string& text, const std::string& negative_hint,
                    const std::string& nan_hint) {
  std::size_t used = 0;
  double v = NAN;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(v)) {
    throw detrq::Error(detrq::ErrorKind::kUsage, flag, "'" + text + "' is not a number", nan_hint);
  }
  if (v < 0) throw detrq::Error(detrq::ErrorKind::kUsage, flag, "'" + text + "' is negative", negative_hint);
  return v;
}

// --accuracy-budget DB: a finite, non-negative number of decibels.
double parse_budget_db(const std::string& text) {
  return parse_budget("--accuracy-budget", text, "an SQNR budget is a positive number of dB, for example 30",
                      "give the SQNR every output must reach, in dB, for example 30");
}

// --ap-budget POINTS: a finite, non-negative number of label-free AP points.
double parse_ap_budget(const std::string& text) {
  return parse_budget("--ap-budget", text, "an AP budget is the points the policy may lose, 0 or more, for example 0.1",
                      "give the label-free AP points the policy may lose, for example 0.1");
}

}  // namespace

CalibrationFlags add_calibration_flags(CLI::App* cmd) {
  CalibrationFlags flags;
  quant::CalibrateOptions* opt = flags.options.get();
  const auto before = cmd->get_options().size();
  cmd->add_option("--eval-count", opt->eval_count, "Held-out tensors for the INT8-vs-FP32 check")
      ->capture_default_str()->check(count_validator());
  cmd->add_option("--method", *flags.method, "entropy | minmax | percentile | mse")->capture_default_str();
  cmd->add_option("--percentile", opt->calibrator.percentile, "Percentile for --method percentile")->capture_default_str();
  cmd->add_option("--cache-version", opt->cache_version, "TensorRT version number in the cache header")
      ->capture_default_str();
  cmd->add_option("--exclude", opt->policy.exclude, "Node-name glob kept in float (repeatable)");
  cmd->add_option("--include", opt->policy.include, "Node-name glob quantized even where the DETR defaults say float");
  cmd->add_flag("--no-detr-defaults", *flags.no_detr_defaults, "Quantize attention, sampling and box-head layers too");
  cmd->add_flag("--float-attention-and-stem", opt->policy.float_attention_and_stem,
                "Keep attention score products and the patch embedding in float (40% and 4% of RF-DETR's multiply-adds)");
  cmd->add_option("--smooth-alpha", opt->smooth_alpha,
                  "SmoothQuant strength for LayerNorm -> MatMul outlier migration, in [0, 1] (0: none)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--residual-adds", opt->policy.residual_adds,
                "Also Q/DQ the skip input of residual Adds after INT8 layers (TensorRT fuses them then)");
  flags.budget_option =
      cmd->add_option("--accuracy-budget", *flags.budget, "SQNR in dB every output must reach: the most sensitive layers return to float until it does");
  cmd->add_option("--ap-budget", *flags.ap_budget,
                  "Label-free AP points (INT8 against FP32 detections on the held-out tensors) the policy may lose; "
                  "over it, groups of layers are measured alone and the costliest returned to float")
      ->capture_default_str();
  cmd->add_flag("--all-tensors", opt->all_tensors,
                "Calibrate every float tensor (complete TensorRT cache; slower) instead of the inputs and "
                "outputs of the layers the policy quantizes");
  const auto all = cmd->get_options();
  for (std::size_t i = before; i < all.size(); ++i) {
    flags.added.push_back(const_cast<CLI::Option*>(all[i]));
    flags.added.back()->group("Calibration");
  }
  return flags;
}

void CalibrationFlags::finish() const {
  if (*no_detr_defaults) options->policy.detr_defaults = false;
  options->method = quant::parse_method(*method);
  if (budget_option && budget_option->count() > 0) options->accuracy_budget_db = parse_budget_db(*budget);  // "" too
  options->ap_budget = parse_ap_budget(*ap_budget);
  if (options->cache_version.empty() || options->cache_version.find_first_not_of("0123456789") != std::string::npos) {
    throw detrq::Error(detrq::ErrorKind::kUsage, "--cache-version", "must be digits, like 8601 or 100100");
  }
}

std::vector<std::string> CalibrationFlags::args() const {
  std::vector<std::string> out;
  for (const CLI::Option* o : added) {
    if (o->count() == 0) continue;
    const std::string name = "--" + o->get_lnames().front();
    if (o->get_type_size_max() == 0) {  // a flag: once is enough, and it takes no value
      out.push_back(name);
      continue;
    }
    for (const std::string& value : o->results()) {
      out.push_back(name);
      out.push_back(value);
    }
  }
  return out;
}

void add_calibrate_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  CLI::App* cmd = app.add_subcommand("calibrate", "Calibrate an FP32 ONNX model for INT8 on the CPU");
  const CalibrationFlags flags = add_calibration_flags(cmd);
  const std::shared_ptr<quant::CalibrateOptions> opt = flags.options;
  cmd->add_option("--onnx", opt->onnx, "FP32 ONNX model")->required();  // a missing file: detrq: error, exit 6
  auto tensors = std::make_shared<std::filesystem::path>();
  auto images = std::make_shared<std::filesystem::path>();
  auto* t_opt = cmd->add_option("--tensors", *tensors, "Folder of calib_*.bin tensors (from detrq tensors)");
  auto* i_opt = cmd->add_option("--images", *images, "Folder of .jpg/.png images, letterboxed on the fly");
  t_opt->excludes(i_opt);
  i_opt->excludes(t_opt);
  cmd->add_option("--count", opt->count, "Calibration tensors to use (0, the default: all but the held-out ones)")
      ->check(count_validator());
  // Files by the names `build-engine` reads them with (--cache, --qdq); --cache-path and --qdq-out still work.
  cmd->add_option("--cache", opt->cache_path, "TensorRT calibration cache to write (required)");
  cmd->add_option("--qdq", opt->qdq_out, "Q/DQ ONNX model to write");
  add_hidden_alias(cmd, "--cache-path", opt->cache_path);
  add_hidden_alias(cmd, "--qdq-out", opt->qdq_out);
  cmd->add_option("--table", opt->table_path, "calibration.json to write");
  cmd->add_option("--report", opt->report_path, "report.html to write");
  cmd->add_option("--threads", opt->threads, "Threads (0, the default: one per core)")->check(count_validator());
  auto cpu_features = std::make_shared<std::string>();
  cmd->add_option("--cpu-features", *cpu_features, "CPU features the kernels may use, narrowing this CPU's (e.g. avx2,fma; default: all it has; a feature it lacks is refused)");
  cmd->callback([&action, &global, flags, opt, tensors, images, cpu_features] {
    action = [&global, flags, opt, tensors, images, cpu_features] {
      opt->target = runtime::narrowed_host_target(*cpu_features);
      if (opt->cache_path.empty()) throw detrq::Error(detrq::ErrorKind::kUsage, "calibrate", "--cache FILE is required");
      if (!std::filesystem::is_regular_file(opt->onnx)) throw_io(opt->onnx.string(), "does not exist", "--onnx takes an FP32 ONNX model file");
      if (tensors->empty() && images->empty()) {
        throw detrq::Error(detrq::ErrorKind::kUsage, "calibrate", "give --tensors DIR or --images DIR");
      }
      opt->source = tensors->empty() ? image_folder_source(*images) : quant::tensor_folder_source(*tensors);
      flags.finish();
      quant::CalibrateResult r = quant::calibrate(*opt);
      int quantized = 0;
      for (const auto& [name, t] : r.table.tensors) quantized += t.quantized ? 1 : 0;
      if (global.json) {
        nlohmann::ordered_json j;
        j["images"] = r.calibration_images;
        j["method"] = r.table.method;
        j["tensors"] = r.table.tensors.size();
        j["tensors_with_scale"] = quantized;
        j["quantized_nodes"] = r.qdq.quantized_nodes;
        j["quantized_residual_adds"] = r.qdq.quantized_residuals;
        j["macs_total"] = r.macs.total;
        j["macs_int8"] = r.macs.int8;
        j["int8_mac_share"] = r.macs.int8_share();
        j["smoothed_layernorms"] = r.smoothed_layernorms;
        j["statistics_seconds"] = r.statistics_seconds;
        // A figure is null when there is none to give; "identical" says apart the one case where that is the
        // best result (no difference at any finite position: SQNR +inf) from the others (an all-zero reference).
        nlohmann::ordered_json outs = nlohmann::ordered_json::object();
        nlohmann::ordered_json identical = nlohmann::ordered_json::object();
        for (const auto& o : r.fidelity.outputs) {
          outs[o.name] = std::isfinite(o.sqnr_db) ? nlohmann::ordered_json(o.sqnr_db) : nullptr;
          identical[o.name] = o.sqnr_db == std::numeric_limits<double>::infinity();
        }
        j["sqnr_db"] = outs;
        j["identical"] = identical;
        j["heldout_images"] = r.fidelity.images;
        if (r.fidelity.top_detection_agreement >= 0) j["top_detection_agreement"] = r.fidelity.top_detection_agreement;
        if (r.fidelity.label_free_ap >= 0) {
          j["label_free_ap"] = r.fidelity.label_free_ap;
          j["label_free_ap_standard_error"] = r.fidelity.label_free_ap_standard_error;
        }
        const auto& search = r.policy_search;
        j["ap_budget"] = {{"budget_points", search.budget}, {"measurable", search.measurable}, {"searched", search.searched},
                          {"met", search.met}, {"evaluations", search.evaluations}, {"seconds", search.seconds},
                          {"float_groups", search.chosen_float_groups()}, {"summary", search.summary}};
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("calibrated %d images with %s: %d of %zu tensors have a scale, %d of %zu nodes in INT8\n",
                    r.calibration_images, r.table.method.c_str(), quantized, r.table.tensors.size(),
                    r.qdq.quantized_nodes, r.qdq.decisions.size());
        std::printf("multiply-adds in INT8: %.1f%% of %.2f G", 100.0 * r.macs.int8_share(), r.macs.total / 1e9);
        if (r.smoothed_layernorms > 0) std::printf(" (%d LayerNorms smoothed)", r.smoothed_layernorms);
        std::printf("\n");
        if (r.fidelity.images == 0) std::printf("INT8 against FP32: not measured (no held-out tensors)\n");
        for (const auto& o : r.fidelity.outputs) {
          std::printf("INT8 against FP32 on %d held-out images: %s SQNR %.2f dB\n", r.fidelity.images, o.name.c_str(),
                      o.sqnr_db);
        }
        if (r.fidelity.top_detection_agreement >= 0) {
          std::printf("top-detection agreement: %.1f%%\n", 100.0 * r.fidelity.top_detection_agreement);
        }
        if (r.fidelity.label_free_ap >= 0) {
          std::printf("label-free AP (INT8 against FP32 detections >= 0.3 on %d held-out images): %.1f +- %.1f\n",
                      r.fidelity.images, r.fidelity.label_free_ap, r.fidelity.label_free_ap_standard_error);
        }
        std::printf("AP budget %.2g: %s\n", r.policy_search.budget, r.policy_search.summary.c_str());
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
