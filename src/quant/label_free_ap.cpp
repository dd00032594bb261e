// Label-free AP: FP32 detections as ground truth for the INT8 model's, through detrq's COCO evaluator.
#include "detrq/quant/label_free_ap.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "detrq/vision/coco_eval.h"

namespace detrq::quant {
namespace {

struct Box {
  int64_t category = 0;
  float score = 0.0F;
  std::array<double, 4> xywh{};
};

bool is_rfdetr(const ModelOutputs& out) {
  auto d = out.find("dets");
  auto l = out.find("labels");
  return d != out.end() && l != out.end() && d->second.rank() == 3 && l->second.rank() == 3 &&
         d->second.dim(2) == 4 && d->second.dim(1) == l->second.dim(1) &&
         d->second.dtype() == core::DType::kFloat32 && l->second.dtype() == core::DType::kFloat32;
}

// The top `k` (query, class) pairs by sigmoid score, scored at least `threshold`; class 0 is no category.
std::vector<Box> detections(const ModelOutputs& out, int k, float threshold, int size) {
  const core::Tensor& dets = out.at("dets");
  const core::Tensor& labels = out.at("labels");
  const int64_t queries = labels.dim(1), classes = labels.dim(2);
  const float* logit = labels.data<float>();
  const float* box = dets.data<float>();
  std::vector<int64_t> order;
  for (int64_t i = 0; i < queries * classes; ++i) {
    if (i % classes != 0 && std::isfinite(logit[i])) order.push_back(i);
  }
  const std::size_t keep = std::min<std::size_t>(order.size(), static_cast<std::size_t>(k));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](int64_t a, int64_t b) { return logit[a] > logit[b] || (logit[a] == logit[b] && a < b); });
  std::vector<Box> out_boxes;
  for (std::size_t r = 0; r < keep; ++r) {
    const int64_t i = order[r];
    const float score = 1.0F / (1.0F + std::exp(-logit[i]));
    if (score < threshold) break;
    const float* b = box + (i / classes) * 4;
    const double w = b[2] * size, h = b[3] * size;
    out_boxes.push_back({i % classes, score, {b[0] * size - w / 2, b[1] * size - h / 2, w, h}});
  }
  return out_boxes;
}

}  // namespace

double label_free_ap(const std::vector<ModelOutputs>& reference, const std::vector<ModelOutputs>& test,
                     const LabelFreeApOptions& options) {
  if (reference.empty() || reference.size() != test.size()) return -1.0;
  vision::CocoDataset truth;
  std::vector<vision::CocoDetection> found;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    if (!is_rfdetr(reference[i]) || !is_rfdetr(test[i])) return -1.0;
    const auto id = static_cast<int64_t>(i + 1);
    truth.images.push_back({id, "image_" + std::to_string(id), options.input_size, options.input_size});
    for (const Box& b : detections(reference[i], options.max_detections, options.reference_threshold, options.input_size)) {
      vision::CocoAnnotation a;
      a.id = static_cast<int64_t>(truth.annotations.size() + 1);
      a.image_id = id;
      a.category_id = b.category;
      a.bbox = b.xywh;
      a.area = b.xywh[2] * b.xywh[3];
      truth.annotations.push_back(a);
      truth.categories[b.category] = "class_" + std::to_string(b.category);
    }
    for (const Box& b : detections(test[i], options.max_detections, 0.0F, options.input_size)) {
      found.push_back({id, b.category, b.xywh, b.score});
    }
  }
  if (truth.annotations.empty()) return -1.0;
  const vision::CocoMetrics m = vision::evaluate_coco_boxes(truth, found);
  return m.ap < 0 ? -1.0 : 100.0 * m.ap;
}

}  // namespace detrq::quant
