// `detrq eval`: COCO box AP, identical to pycocotools, of a model on an image set (optionally two models
// side by side, FP32 against INT8) or of a detections file.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/pipeline/evaluate.h"
#include "detrq/vision/coco_eval.h"

namespace detrq::cli {

namespace {

struct EvalArgs {
  std::string engine;
  std::string onnx;
  std::string detections;
  std::string images;
  std::string annotations;
  std::string compare;
  std::string save_detections;
  int max_images = 0;
  int threads = 0;
  std::string cpu_features;
};

nlohmann::json metrics_json(const vision::CocoMetrics& m) {
  nlohmann::json j = nlohmann::json::object();
  const auto values = m.as_array();
  for (std::size_t i = 0; i < values.size(); ++i) j[vision::CocoMetrics::names()[i]] = values[i];
  return j;
}

void print_table(const std::vector<std::pair<std::string, vision::CocoMetrics>>& rows) {
  for (std::size_t r = 0; r < rows.size(); ++r) std::printf("[%zu] %s\n", r + 1, rows[r].first.c_str());
  // One convention with the model card: the change is the second model minus the first (INT8 - FP32 for
  // `--onnx FP32 --compare INT8`), in the metrics' own unit (0 to 1, as pycocotools prints them).
  if (rows.size() == 2) std::printf("[2]-[1]: the change, [2] minus [1], in the metrics' unit (0 to 1)\n");
  std::printf("%-10s", "metric");
  for (std::size_t r = 0; r < rows.size(); ++r) std::printf(" %9s", ("[" + std::to_string(r + 1) + "]").c_str());
  if (rows.size() == 2) std::printf(" %9s", "[2]-[1]");
  std::printf("\n");
  for (std::size_t i = 0; i < 12; ++i) {
    std::printf("%-10s", vision::CocoMetrics::names()[i]);
    for (const auto& row : rows) std::printf(" %9.4f", row.second.as_array()[i]);
    if (rows.size() == 2) std::printf(" %+9.4f", rows[1].second.as_array()[i] - rows[0].second.as_array()[i]);
    std::printf("\n");
  }
}

}  // namespace

void add_eval_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "COCO box AP (as pycocotools computes it) of a model or of detections");
  auto* engine = cmd->add_option("--engine", args->engine, "Engine file from `detrq build-engine`");
  auto* onnx = cmd->add_option("--onnx", args->onnx, "ONNX model (FP32 or Q/DQ)");
  auto* dets = cmd->add_option("--detections", args->detections, "COCO results JSON instead of a model");
  engine->excludes(onnx)->excludes(dets);
  onnx->excludes(dets);
  cmd->add_option("--images", args->images, "Folder of the annotated images");
  cmd->add_option("--annotations", args->annotations, "COCO instances.json")->required();
  cmd->add_option("--compare", args->compare,
                  "A second model (engine or ONNX) evaluated on the same images; the change column is it minus the first");
  cmd->add_option("--save-detections", args->save_detections, "Write the (first) model's detections as COCO results JSON");
  cmd->add_option("--max-images", args->max_images, "Evaluate on the first N images only (0: all)")->check(count_validator());
  cmd->add_option("--threads", args->threads, "Threads (0: one per core)")->check(count_validator());
  cmd->add_option("--cpu-features", args->cpu_features, "CPU features the kernels may use, narrowing this CPU's (e.g. avx2,fma; default: all it has; a feature it lacks is refused)");
  cmd->callback([&action, &global, args] {
    action = [&global, args] {
      std::vector<std::pair<std::string, vision::CocoMetrics>> rows;
      int images = 0;
      if (!args->detections.empty()) {
        if (!args->compare.empty()) throw Error(ErrorKind::kUsage, "--compare", "needs a model, not --detections");
        const auto gt = vision::CocoDataset::load(args->annotations);
        rows.emplace_back(args->detections, vision::evaluate_coco_boxes(gt, vision::load_coco_detections(args->detections)));
        images = static_cast<int>(gt.images.size());
      } else {
        const std::string model = args->engine.empty() ? args->onnx : args->engine;
        if (model.empty()) throw Error(ErrorKind::kUsage, "eval", "give --engine, --onnx or --detections");
        check_model_option("--engine", args->engine);
        check_model_option("--onnx", args->onnx);
        if (args->images.empty()) throw Error(ErrorKind::kUsage, "eval", "--images is required to evaluate a model");
        pipeline::EvaluationOptions opt;
        opt.threads = args->threads;
        opt.target = runtime::narrowed_host_target(args->cpu_features);
        opt.max_images = args->max_images;
        auto first = pipeline::evaluate_model(model, args->images, args->annotations, opt);
        if (!args->save_detections.empty()) {
          core::write_file_atomic(args->save_detections, vision::coco_detections_to_json(first.detections));
        }
        images = first.images;
        rows.emplace_back(first.model, first.metrics);
        if (!args->compare.empty()) {
          auto second = pipeline::evaluate_model(args->compare, args->images, args->annotations, opt);
          rows.emplace_back(second.model, second.metrics);
        }
      }
      if (global.json) {
        nlohmann::json j = {{"images", images}, {"results", nlohmann::json::array()}};
        for (const auto& [name, m] : rows) j["results"].push_back({{"model", name}, {"metrics", metrics_json(m)}});
        if (rows.size() == 2) {
          nlohmann::json delta = nlohmann::json::object();
          for (std::size_t i = 0; i < 12; ++i) {
            delta[vision::CocoMetrics::names()[i]] = rows[1].second.as_array()[i] - rows[0].second.as_array()[i];
          }
          j["change"] = delta;
          j["change_is"] = "results[1] minus results[0], in the metrics' unit (0 to 1)";
        }
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("%d images\n", images);
        print_table(rows);
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
