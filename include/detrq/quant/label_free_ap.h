// Accuracy without labels: the INT8 model's detections scored COCO-style against the FP32 model's
// detections (those above a score threshold) taken as ground truth, on held-out images. 100 means the
// INT8 model finds every FP32 detection with the same class and box; the drop from 100 in points is
// what quantization costs, as far as held-out images can tell.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"

namespace detrq::quant {

struct LabelFreeApOptions {
  float reference_threshold = 0.3F;  // FP32 detections at or above this score are the ground truth
  int max_detections = 100;          // INT8 detections kept per image (top-k over queries x classes)
  int input_size = 512;              // boxes are normalized to the input: scaled to pixels for COCO's size ranges
};

// One model run: output name -> tensor (RF-DETR's `dets` [1, Q, 4] cxcywh normalized and `labels` [1, Q, C]).
using ModelOutputs = std::map<std::string, core::Tensor>;

// COCO AP (IoU 0.50:0.95, pycocotools' arithmetic) in points, 0..100, of `test` against `reference` over
// the images; -1 when the outputs are not RF-DETR's or the reference has no detection above the threshold.
double label_free_ap(const std::vector<ModelOutputs>& reference, const std::vector<ModelOutputs>& test,
                     const LabelFreeApOptions& options = {});

// The same figure with its noise: the jackknife standard error over the images (the AP recomputed
// with each image left out in turn; sqrt((n-1)/n * sum (AP_i - mean)^2)). With 8 images and a few
// dozen reference boxes, one box missing one IoU threshold moves the AP by about 0.2 point: this is how
// finely the measure resolves. 0 with fewer than two images (or two leave-one-out sets with boxes).
struct LabelFreeAp {
  double ap = -1.0;              // as label_free_ap(); < 0: not measured
  double standard_error = 0.0;   // in points
};
LabelFreeAp label_free_ap_estimate(const std::vector<ModelOutputs>& reference, const std::vector<ModelOutputs>& test,
                                   const LabelFreeApOptions& options = {});

}  // namespace detrq::quant
