// AbsHistogram: bin placement, range growth without losing counts, merging.
#include "detrq/quant/abs_histogram.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "detrq/core/error.h"

using detrq::quant::AbsHistogram;

TEST(AbsHistogram, RejectsBinCountsThatCannotBeHalved) {
  EXPECT_THROW(AbsHistogram(1000), detrq::Error);
  EXPECT_THROW(AbsHistogram(64), detrq::Error);
  EXPECT_NO_THROW(AbsHistogram(4096));
}

TEST(AbsHistogram, PlacesAbsoluteValuesInEqualWidthBins) {
  AbsHistogram h(128);
  h.cover(128.0);
  std::vector<float> v{0.0F, 0.5F, -0.5F, 1.0F, -1.5F, 127.9F, -128.0F, 64.0F};
  h.add(v);
  EXPECT_EQ(h.total(), v.size());
  EXPECT_EQ(h.counts()[0], 3u);   // 0, 0.5, -0.5
  EXPECT_EQ(h.counts()[1], 2u);   // 1.0, -1.5
  EXPECT_EQ(h.counts()[64], 1u);
  EXPECT_EQ(h.counts()[127], 2u);  // 127.9 and the range itself
}

TEST(AbsHistogram, GrowingTheRangeKeepsEveryCountInTheRightBin) {
  AbsHistogram h(128);
  h.cover(1.0);
  std::vector<float> first{0.1F, 0.3F, 0.99F};
  h.add(first);
  h.cover(3.0);  // doubles twice: 4.0
  EXPECT_DOUBLE_EQ(h.range(), 4.0);
  EXPECT_EQ(h.total(), 3u);
  const double w = h.bin_width();
  for (float x : first) EXPECT_EQ(h.counts()[static_cast<std::size_t>(x / w)], 1u) << x;
  std::vector<float> second{3.5F, -2.0F};
  h.add(second);
  EXPECT_EQ(h.total(), 5u);
  EXPECT_EQ(h.counts()[static_cast<std::size_t>(3.5 / w)], 1u);
}

TEST(AbsHistogram, HugeGrowthFoldsEverythingIntoTheFirstBin) {
  AbsHistogram h(128);
  h.cover(1e-30);
  std::vector<float> v{1e-30F, 5e-31F};
  h.add(v);
  h.cover(1e30);
  EXPECT_EQ(h.counts()[0], 2u);
  EXPECT_GE(h.range(), 1e30);
}

TEST(AbsHistogram, SameCountsWhateverTheOrderOfGrowth) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0F, 1.0F);
  std::vector<float> a(1000), b(1000);
  for (auto& x : a) x = dist(rng);
  for (auto& x : b) x = 4.0F * dist(rng);
  AbsHistogram h(256);
  h.cover(16.0);
  h.add(a);
  h.add(b);
  AbsHistogram g(256);
  g.cover(1.0);  // grows to 16 exactly: power of two start
  std::vector<float> a_in;
  for (float x : a) if (std::fabs(x) <= 1.0F) a_in.push_back(x);
  g.add(a_in);
  g.cover(16.0);
  std::vector<float> rest;
  for (float x : a) if (std::fabs(x) > 1.0F) rest.push_back(x);
  g.add(rest);
  g.add(b);
  ASSERT_DOUBLE_EQ(g.range(), 16.0);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(g.counts()[i], h.counts()[i]) << i;
}

TEST(AbsHistogram, MergeCombinesDifferentRanges) {
  AbsHistogram a(128), b(128);
  a.cover(1.0);
  b.cover(2.0);
  std::vector<float> va{0.25F}, vb{1.5F};
  a.add(va);
  b.add(vb);
  a.merge(b);
  EXPECT_DOUBLE_EQ(a.range(), 2.0);
  EXPECT_EQ(a.total(), 2u);
  EXPECT_EQ(a.counts()[16], 1u);  // 0.25 / (2/128)
  EXPECT_EQ(a.counts()[96], 1u);  // 1.5 / (2/128)
}
