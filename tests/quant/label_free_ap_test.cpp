// Label-free AP on hand-built RF-DETR outputs: identical detections score 100, a missed class halves
// it (two classes, one found), and outputs that are not RF-DETR's are not measured.
#include "detrq/quant/label_free_ap.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace detrq::quant;
using detrq::core::Tensor;

namespace {

constexpr int64_t kQueries = 5, kClasses = 4;

float logit(float p) { return std::log(p / (1.0F - p)); }

// Query 0: class 1 at 0.9, box centred (0.3, 0.3) size 0.2; query 1: class 2 at 0.8, box (0.7, 0.6) 0.3x0.2.
// Every other (query, class) is masked (-inf logits are not detections), so each output has exactly
// these two detections.
ModelOutputs outputs(int64_t query1_class) {
  std::vector<float> dets(kQueries * 4, 0.5F), labels(kQueries * kClasses, -INFINITY);
  const float b0[4] = {0.3F, 0.3F, 0.2F, 0.2F}, b1[4] = {0.7F, 0.6F, 0.3F, 0.2F};
  for (int i = 0; i < 4; ++i) {
    dets[i] = b0[i];
    dets[4 + i] = b1[i];
  }
  labels[0 * kClasses + 1] = logit(0.9F);
  labels[1 * kClasses + query1_class] = logit(0.8F);
  return {{"dets", Tensor::from_vector<float>({1, kQueries, 4}, dets)},
          {"labels", Tensor::from_vector<float>({1, kQueries, kClasses}, labels)}};
}

}  // namespace

TEST(LabelFreeAp, IdenticalDetectionsScoreOneHundred) {
  const std::vector<ModelOutputs> ref = {outputs(2), outputs(2)};
  EXPECT_DOUBLE_EQ(label_free_ap(ref, ref), 100.0);
}

TEST(LabelFreeAp, AClassTheTestMissesCountsZeroForThatClass) {
  // Query 1 says class 3 instead of 2: class 1 is found (AP 1), class 2 is not (AP 0); class 3 has no
  // reference box, so it is not a category of the evaluation.
  const std::vector<ModelOutputs> ref = {outputs(2)};
  const std::vector<ModelOutputs> test = {outputs(3)};
  EXPECT_NEAR(label_free_ap(ref, test), 50.0, 1e-9);
}

TEST(LabelFreeAp, NotMeasuredWithoutRfDetrOutputsOrReferenceBoxes) {
  const std::vector<ModelOutputs> other = {{{"y", Tensor::from_vector<float>({1, 2}, {1.0F, 2.0F})}}};
  EXPECT_EQ(label_free_ap(other, other), -1.0);
  LabelFreeApOptions strict;
  strict.reference_threshold = 0.95F;  // nothing scores that high
  const std::vector<ModelOutputs> ref = {outputs(2)};
  EXPECT_EQ(label_free_ap(ref, ref, strict), -1.0);
}

TEST(LabelFreeAp, EstimateGivesTheJackknifeStandardErrorOverImages) {
  // Image 1 identical (AP 100 alone), image 2 misses class 2 (AP 50 alone). Both: class 1 found twice (AP 1),
  // class 2 found in one image of two at precision 1 (recall 0.5: 51 of COCO's 101 recall points), so
  // (1 + 51/101) / 2. Jackknife: leave-one-out APs 50 and 100, mean 75, SE = sqrt(1/2 * (25^2 + 25^2)) = 25.
  const std::vector<ModelOutputs> ref = {outputs(2), outputs(2)};
  const std::vector<ModelOutputs> test = {outputs(2), outputs(3)};
  const LabelFreeAp e = label_free_ap_estimate(ref, test);
  EXPECT_NEAR(e.ap, 100.0 * (1.0 + 51.0 / 101.0) / 2.0, 1e-9);
  EXPECT_DOUBLE_EQ(e.ap, label_free_ap(ref, test));
  EXPECT_NEAR(e.standard_error, 25.0, 1e-9);
  // One image: no noise figure.
  const LabelFreeAp one = label_free_ap_estimate({outputs(2)}, {outputs(3)});
  EXPECT_NEAR(one.ap, 50.0, 1e-9);
  EXPECT_EQ(one.standard_error, 0.0);
}
