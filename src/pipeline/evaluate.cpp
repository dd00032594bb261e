// Model evaluation on a COCO image set (see evaluate.h).
#include "detrq/pipeline/evaluate.h"

#include <fmt/format.h>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/vision/image_decoder.h"

namespace detrq::pipeline {

namespace {
const char* const kMismatchHint = "give the images folder these annotations describe, or the annotations of this folder";
}  // namespace

void check_annotated_images_exist(const std::filesystem::path& images_dir, const std::filesystem::path& annotations,
                                  const vision::CocoDataset& dataset) {
  for (const auto& img : dataset.images) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(images_dir / img.file_name, ec)) {
      throw_invalid(annotations.string(),
                    fmt::format("lists image '{}' (id {}), which is not in {}", img.file_name, img.id, images_dir.string()),
                    kMismatchHint);
    }
  }
}

void check_annotated_images_exist(const std::filesystem::path& images_dir, const std::filesystem::path& annotations) {
  check_annotated_images_exist(images_dir, annotations, vision::CocoDataset::load(annotations));
}

Evaluation evaluate_model(const std::filesystem::path& model, const std::filesystem::path& images_dir,
                          const std::filesystem::path& annotations, const EvaluationOptions& options) {
  const vision::CocoDataset gt = vision::CocoDataset::load(annotations);
  DetectorOptions detector_options;
  detector_options.threads = options.threads;
  detector_options.target = options.target;
  Detector detector = Detector::open(model, detector_options);
  vision::PostprocessOptions post;
  post.num_select = options.num_select;

  Evaluation ev;
  ev.model = detector.description();
  vision::CocoDataset used = gt;
  if (options.max_images > 0 && static_cast<int>(used.images.size()) > options.max_images) {
    used.images.resize(static_cast<std::size_t>(options.max_images));
  }
  check_annotated_images_exist(images_dir, annotations, used);
  core::Progress progress("evaluating " + model.filename().string(), static_cast<int64_t>(used.images.size()), "images");
  for (const auto& img : used.images) {
    const vision::RgbImage image = vision::decode_image(images_dir / img.file_name);
    if ((img.width > 0 && img.width != image.width) || (img.height > 0 && img.height != image.height)) {
      throw_invalid(annotations.string(),
                    fmt::format("says image '{}' (id {}) is {}x{}, but {} is {}x{}", img.file_name, img.id, img.width,
                                img.height, (images_dir / img.file_name).string(), image.width, image.height),
                    kMismatchHint);
    }
    for (const auto& d : detector.detect(image, post)) {
      ev.detections.push_back({img.id, d.category_id, {d.x0, d.y0, d.x1 - d.x0, d.y1 - d.y0}, d.score});
    }
    progress.advance();
  }
  progress.finish();
  ev.images = static_cast<int>(used.images.size());
  ev.metrics = vision::evaluate_coco_boxes(used, ev.detections);
  return ev;
}

}  // namespace detrq::pipeline
