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

// Each image's reference boxes and test detections, extracted once; AP over any subset of images.
class ImageBoxes {
 public:
  ImageBoxes(const std::vector<ModelOutputs>& reference, const std::vector<ModelOutputs>& test,
             const LabelFreeApOptions& options)
      : size_(options.input_size) {
    if (reference.empty() || reference.size() != test.size()) return;
    for (std::size_t i = 0; i < reference.size(); ++i) {
      if (!is_rfdetr(reference[i]) || !is_rfdetr(test[i])) return;
    }
    for (std::size_t i = 0; i < reference.size(); ++i) {
      truth_.push_back(detections(reference[i], options.max_detections, options.reference_threshold, size_));
      found_.push_back(detections(test[i], options.max_detections, 0.0F, size_));
    }
  }
  std::size_t images() const { return truth_.size(); }

  // COCO AP in points over `images` (indexes), -1 when they hold no reference box.
  double ap(const std::vector<std::size_t>& images) const {
    vision::CocoDataset truth;
    std::vector<vision::CocoDetection> found;
    for (std::size_t i : images) {
      const auto id = static_cast<int64_t>(i + 1);
      truth.images.push_back({id, "image_" + std::to_string(id), size_, size_});
      for (const Box& b : truth_[i]) {
        vision::CocoAnnotation a;
        a.id = static_cast<int64_t>(truth.annotations.size() + 1);
        a.image_id = id;
        a.category_id = b.category;
        a.bbox = b.xywh;
        a.area = b.xywh[2] * b.xywh[3];
        truth.annotations.push_back(a);
        truth.categories[b.category] = "class_" + std::to_string(b.category);
      }
      for (const Box& b : found_[i]) found.push_back({id, b.category, b.xywh, b.score});
    }
    if (truth.annotations.empty()) return -1.0;
    const vision::CocoMetrics m = vision::evaluate_coco_boxes(truth, found);
    return m.ap < 0 ? -1.0 : 100.0 * m.ap;
  }

 private:
  int size_;
  std::vector<std::vector<Box>> truth_, found_;
};

std::vector<std::size_t> all_but(std::size_t n, std::size_t skip) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip) out.push_back(i);
  }
  return out;
}

}  // namespace

double label_free_ap(const std::vector<ModelOutputs>& reference, const std::vector<ModelOutputs>& test,
                     const LabelFreeApOptions& options) {
  const ImageBoxes boxes(reference, test, options);
  if (boxes.images() == 0) return -1.0;
  return boxes.ap(all_but(boxes.images(), boxes.images()));
}

LabelFreeAp label_free_ap_estimate(const std::vector<ModelOutputs>& reference, const std::vector<ModelOutputs>& test,
                                   const LabelFreeApOptions& options) {
  const ImageBoxes boxes(reference, test, options);
  LabelFreeAp out;
  const std::size_t n = boxes.images();
  if (n == 0) return out;
  out.ap = boxes.ap(all_but(n, n));
  if (out.ap < 0 || n < 2) return out;
  std::vector<double> replicates;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = boxes.ap(all_but(n, i));
    if (a >= 0) replicates.push_back(a);
  }
  if (replicates.size() < 2) return out;
  const double k = static_cast<double>(replicates.size());
  const double mean = std::accumulate(replicates.begin(), replicates.end(), 0.0) / k;
  double ss = 0.0;
  for (double a : replicates) ss += (a - mean) * (a - mean);
  out.standard_error = std::sqrt((k - 1.0) / k * ss);
  return out;
}

}  // namespace detrq::quant
