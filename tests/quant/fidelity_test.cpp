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
