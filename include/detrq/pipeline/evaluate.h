// Evaluating a model on a COCO-format image set: detect on every annotated image, then COCO box AP
// (identical to pycocotools) of the detections.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "detrq/pipeline/detector.h"
#include "detrq/vision/coco_eval.h"

namespace detrq::pipeline {

struct EvaluationOptions {
  int threads = 0;
  int num_select = 300;  // detections kept per image before COCO's own top 100, as RF-DETR evaluates
  int max_images = 0;    // 0: every image of the annotations
  runtime::CpuTarget target = runtime::CpuTarget::host();  // what the kernels may use
};

struct Evaluation {
  std::string model;        // the detector's description
  int images = 0;
  vision::CocoMetrics metrics;
  std::vector<vision::CocoDetection> detections;  // COCO results format, xywh in image pixels
};

// Runs `model` on the images of `annotations` found in `images_dir` (by file_name). A missing or
// undecodable image is an error naming it: an evaluation over a silently smaller set would mislead.
Evaluation evaluate_model(const std::filesystem::path& model, const std::filesystem::path& images_dir,
                          const std::filesystem::path& annotations, const EvaluationOptions& options = {});

}  // namespace detrq::pipeline
