// Fidelity metrics: SQNR from known noise, non-finite positions skipped, top-detection agreement.
#include "detrq/quant/fidelity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

using namespace detrq::quant;

TEST(Sqnr, TenTimesLogOfEnergyRatio) {
  std::vector<float> ref{1, -1, 1, -1}, test{1.1F, -1.1F, 0.9F, -0.9F};
  SqnrAccumulator acc;
  acc.add(ref, test);
  EXPECT_NEAR(acc.db(), 20.0, 1e-5);  // noise 0.01 per value against 1
  SqnrAccumulator same;
  same.add(ref, ref);
  EXPECT_TRUE(std::isinf(same.db()) && same.db() > 0);
}

TEST(Sqnr, SkipsMaskedPositionsAndAccumulatesOverImages) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> ref{-inf, 2, 2}, test{-inf, 2.2F, 1.8F};
  SqnrAccumulator acc;
  acc.add(ref, test);
  acc.add(ref, ref);
  EXPECT_EQ(acc.skipped, 2u);
  EXPECT_NEAR(acc.db(), 10.0 * std::log10(16.0 / 0.08), 1e-4);
}

TEST(TopDetectionAgreement, CountsMatchingQueryAndClass) {
  // 4 queries x 3 classes; top-2 of the reference: query 0 class 2, query 3 class 1.
  std::vector<float> ref{0, 0, 9, 0, 1, 0, 0, 0, 2, 0, 8, 0};
  std::vector<float> same_top = ref;
  same_top[4] = 1.5F;  // a change outside the top two
  EXPECT_EQ(top_detection_agreement(ref, same_top, 4, 3, 2), 1.0);
  std::vector<float> class_flip = ref;
  class_flip[9] = 8.5F;  // query 3 now prefers class 0
  EXPECT_EQ(top_detection_agreement(ref, class_flip, 4, 3, 2), 0.5);
}

TEST(TopDetectionAgreement, NothingFiniteToAgreeWithIsNoFigure) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> all_nan(12, nan);
  EXPECT_LT(top_detection_agreement(all_nan, all_nan, 4, 3, 2), 0.0);  // was 1.0: "100%" from nothing
  std::vector<float> all_inf(12, inf);
  EXPECT_LT(top_detection_agreement(all_inf, all_inf, 4, 3, 2), 0.0);
  // Non-finite logits rank nothing: the top two are query 0 class 2 and query 3 class 1, as if they were absent.
  std::vector<float> ref{0, nan, 9, 0, 1, 0, 0, 0, 2, inf, 8, 0};
  std::vector<float> test = ref;
  EXPECT_EQ(top_detection_agreement(ref, test, 4, 3, 2), 1.0);
  std::vector<float> broken(12, nan);
  EXPECT_EQ(top_detection_agreement(ref, broken, 4, 3, 2), 0.0);  // an all-NaN test agrees with nothing
}
