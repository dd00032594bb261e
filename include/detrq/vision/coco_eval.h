// COCO bounding-box evaluation that gives the same numbers as pycocotools' COCOeval (iouType "bbox"):
// AP over IoU 0.50:0.95, AP50, AP75, AP by object size, and AR at 1, 10, 100 detections.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace detrq::vision {

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int width = 0;
  int height = 0;
};

struct CocoAnnotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // x, y, width, height in pixels
  double area = 0.0;             // the annotation's own area (COCO uses it, not the box's, for size ranges)
  bool iscrowd = false;
};

// The parts of a COCO instances.json that box evaluation needs.
struct CocoDataset {
  std::vector<CocoImage> images;
  std::map<int64_t, std::string> categories;  // id -> name
  std::vector<CocoAnnotation> annotations;

  // Throws kIo / kInvalidInput naming the file and the offending entry.
  static CocoDataset load(const std::filesystem::path& path);
  static CocoDataset parse(const std::string& json_text, const std::string& source);
};

// One detection in COCO's results format.
struct CocoDetection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // x, y, width, height in pixels
  double score = 0.0;
};

std::vector<CocoDetection> load_coco_detections(const std::filesystem::path& path);
std::vector<CocoDetection> parse_coco_detections(const std::string& json_text, const std::string& source);
// A results JSON array as pycocotools' loadRes reads it.
std::string coco_detections_to_json(const std::vector<CocoDetection>& detections);

// The twelve numbers of COCOeval.summarize(), in its order; -1 where there was nothing to measure.
struct CocoMetrics {
  double ap = -1, ap50 = -1, ap75 = -1, ap_small = -1, ap_medium = -1, ap_large = -1;
  double ar1 = -1, ar10 = -1, ar100 = -1, ar_small = -1, ar_medium = -1, ar_large = -1;

  std::array<double, 12> as_array() const {
    return {ap, ap50, ap75, ap_small, ap_medium, ap_large, ar1, ar10, ar100, ar_small, ar_medium, ar_large};
  }
  static const std::array<const char*, 12>& names();  // "AP", "AP50", ..., "AR_large"
};

// Evaluates detections against the dataset over all its images and categories. Detections whose image is
// not in the dataset are refused (kInvalidInput), as pycocotools refuses them; detections of categories
// the dataset does not list are not counted, as in pycocotools.
CocoMetrics evaluate_coco_boxes(const CocoDataset& ground_truth, const std::vector<CocoDetection>& detections);

}  // namespace detrq::vision
