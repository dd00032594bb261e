// StatisticsObserver: finite range, non-finite counts and histograms, serial and parallel alike.
#include "detrq/quant/statistics_observer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

using detrq::core::DType;
using detrq::core::Tensor;
using detrq::quant::StatisticsObserver;

namespace {
std::vector<float> random_values(std::size_t n, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0F, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}
}  // namespace

TEST(ScanValues, SkipsNonFiniteAndFindsSignedExtremes) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v{-inf, 3.0F, -7.5F, std::nanf(""), inf, 0.0F, -0.0F, 2.0F};
  auto r = detrq::quant::scan_values(v);
  EXPECT_EQ(r.min, -7.5F);
  EXPECT_EQ(r.max, 3.0F);
  EXPECT_EQ(r.nonfinite, 3u);
  EXPECT_EQ(r.max_abs(), 7.5F);
}

TEST(ScanValues, AllNonFiniteGivesNoRange) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v{-inf, inf};
  auto r = detrq::quant::scan_values(v);
  EXPECT_EQ(r.nonfinite, 2u);
  EXPECT_EQ(r.max_abs(), 0.0F);
}

TEST(StatisticsObserver, ObservesFloatTensorsOnlyAndCountsNonFinite) {
  StatisticsObserver obs;
  const float inf = std::numeric_limits<float>::infinity();
  obs.on_tensor("logits", Tensor::from_vector<float>({2, 2}, {1.0F, -inf, 0.5F, -2.0F}));
  obs.on_tensor("ids", Tensor::from_vector<int64_t>({2}, {1, 2}));
  obs.on_tensor("logits", Tensor::from_vector<float>({2}, {4.0F, inf}));
  ASSERT_EQ(obs.statistics().size(), 1u);
  const auto& s = obs.statistics().at("logits");
  EXPECT_EQ(s.count, 6u);
  EXPECT_EQ(s.batches, 2u);
  EXPECT_EQ(s.range.nonfinite, 2u);
  EXPECT_EQ(s.range.min, -2.0F);
  EXPECT_EQ(s.range.max, 4.0F);
  EXPECT_EQ(s.histogram.total(), 4u);
  EXPECT_GE(s.histogram.range(), 4.0);
}

TEST(StatisticsObserver, WatchOnlyRestrictsTheTensors) {
  StatisticsObserver obs;
  obs.watch_only({"a"});
  obs.on_tensor("a", Tensor::from_vector<float>({1}, {1.0F}));
  obs.on_tensor("b", Tensor::from_vector<float>({1}, {1.0F}));
  EXPECT_EQ(obs.statistics().count("a"), 1u);
  EXPECT_EQ(obs.statistics().count("b"), 0u);
}

TEST(StatisticsObserver, ParallelAndSerialAgreeExactly) {
  StatisticsObserver serial(1), parallel(3);
  for (unsigned image = 0; image < 3; ++image) {
    auto v = random_values(300000 + image, 1.0F + static_cast<float>(image), image);
    if (image == 1) v[12345] = std::numeric_limits<float>::infinity();
    serial.observe("t", v);
    parallel.observe("t", v);
  }
  const auto& a = serial.statistics().at("t");
  const auto& b = parallel.statistics().at("t");
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.range.min, b.range.min);
  EXPECT_EQ(a.range.max, b.range.max);
  EXPECT_EQ(a.range.nonfinite, 1u);
  EXPECT_EQ(b.range.nonfinite, 1u);
  EXPECT_EQ(a.histogram.range(), b.histogram.range());
  for (int i = 0; i < a.histogram.bins(); ++i) ASSERT_EQ(a.histogram.counts()[i], b.histogram.counts()[i]) << i;
  EXPECT_EQ(a.histogram.total(), a.count - 1);
}

TEST(StatisticsObserver, MemoryDoesNotGrowWithImages) {
  StatisticsObserver obs;
  auto v = random_values(4096, 1.0F, 1);
  for (int i = 0; i < 10; ++i) obs.observe("t", v);
  const std::size_t after_ten = obs.memory_bytes();
  for (int i = 0; i < 990; ++i) obs.observe("t", v);
  EXPECT_EQ(obs.memory_bytes(), after_ten);
  EXPECT_EQ(obs.statistics().at("t").histogram.total(), 1000u * 4096u);
}
