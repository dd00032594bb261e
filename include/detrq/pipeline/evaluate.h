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

// Checks that every image `annotations` (loaded as `dataset`) lists is a file in `images_dir`; the first
// that is not is an error (kInvalidInput) naming the annotations file and that image. Cheap (no decoding):
// callers run it before long work so that a wrong pairing of folder and annotations fails at once.
void check_annotated_images_exist(const std::filesystem::path& images_dir, const std::filesystem::path& annotations,
                                  const vision::CocoDataset& dataset);
void check_annotated_images_exist(const std::filesystem::path& images_dir, const std::filesystem::path& annotations);

// Runs `model` on the images of `annotations` found in `images_dir` (by file_name). A missing or
// undecodable image is an error naming it, and so is one whose size is not the width and height the
// annotations give (annotations of another image set): an evaluation over wrong pairs would mislead.
Evaluation evaluate_model(const std::filesystem::path& model, const std::filesystem::path& images_dir,
                          const std::filesystem::path& annotations, const EvaluationOptions& options = {});

}  // namespace detrq::pipeline
