// `detrq eval`: COCO box AP of detections against a COCO annotation file, identical to pycocotools.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

#include "command.h"
#include "detrq/vision/coco_eval.h"

namespace detrq::cli {

namespace {

struct EvalArgs {
  std::string detections;
  std::string annotations;
};

nlohmann::json metrics_json(const vision::CocoMetrics& m) {
  nlohmann::json j = nlohmann::json::object();
  const auto values = m.as_array();
  for (std::size_t i = 0; i < values.size(); ++i) j[vision::CocoMetrics::names()[i]] = values[i];
  return j;
}

void print_metrics(const std::string& title, const vision::CocoMetrics& m) {
  std::printf("%s\n", title.c_str());
  const auto values = m.as_array();
  for (std::size_t i = 0; i < values.size(); ++i) std::printf("  %-10s %.4f\n", vision::CocoMetrics::names()[i], values[i]);
}

}  // namespace

void add_eval_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "COCO box AP (as pycocotools computes it) of detections");
  cmd->add_option("--detections", args->detections, "COCO results JSON ([{image_id, category_id, bbox, score}])")
      ->required();
  cmd->add_option("--annotations", args->annotations, "COCO instances.json of the images")->required();
  cmd->callback([&action, &global, args] {
    action = [&global, args] {
      const auto gt = vision::CocoDataset::load(args->annotations);
      const auto dets = vision::load_coco_detections(args->detections);
      const auto m = vision::evaluate_coco_boxes(gt, dets);
      if (global.json) {
        nlohmann::json j = {{"detections", args->detections}, {"images", gt.images.size()}, {"metrics", metrics_json(m)}};
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        print_metrics(args->detections + " on " + std::to_string(gt.images.size()) + " images", m);
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
