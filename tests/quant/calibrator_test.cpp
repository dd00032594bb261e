// Calibrators: the fast entropy search against a direct transcription of EntropyCalibration2's
// definition, and the simpler methods on distributions whose answer is known.
#include "detrq/quant/calibrator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "detrq/core/error.h"

using namespace detrq::quant;

namespace {

// The definition, spelled out bin by bin: O(bins^2), the way NVIDIA's reference computes it.
int reference_entropy_bins(std::vector<double> bins) {
  const int n = static_cast<int>(bins.size());
  bins[0] = bins[1];
  double total = 0;
  for (double b : bins) total += b;
  std::vector<double> divergences;
  for (int i = 128; i <= n; ++i) {
    std::vector<int> level(static_cast<std::size_t>(i));
    std::vector<double> level_sum(128, 0.0), level_nonzero(128, 0.0);
    for (int k = 0; k < i; ++k) {
      level[k] = static_cast<int>(std::floor(k * 128.0 / i));
      if (bins[k] == 0) level[k] = -1;
      if (level[k] >= 0) {
        level_sum[level[k]] += bins[k];
        level_nonzero[level[k]] += 1;
      }
    }
    std::vector<double> q(static_cast<std::size_t>(i), 0.0), p(bins.begin(), bins.begin() + i);
    for (int k = 0; k < i; ++k) {
      if (level[k] >= 0) q[k] = level_sum[level[k]] / level_nonzero[level[k]];
    }
    for (int k = i; k < n; ++k) p[i - 1] += bins[k];
    double ps = 0, qs = 0;
    for (int k = 0; k < i; ++k) {
      ps += p[k];
      qs += q[k];
    }
    double kl = 0;
    for (int k = 0; k < i; ++k) {
      if (p[k] == 0) continue;
      if (q[k] == 0) {
        kl = std::numeric_limits<double>::infinity();
        break;
      }
      kl += p[k] / ps * std::log((p[k] / ps) / (q[k] / qs));
    }
    divergences.push_back(kl);
  }
  // The last of the minima.
  int best = 0;
  for (int j = 0; j < static_cast<int>(divergences.size()); ++j) {
    if (divergences[j] <= divergences[best]) best = j;
  }
  return best + 128;
}

AbsHistogram histogram_of(const std::vector<float>& values, int bins) {
  AbsHistogram h(bins);
  float m = 0;
  for (float v : values) m = std::max(m, std::fabs(v));
  h.cover(m);
  h.add(values);
  return h;
}

}  // namespace

TEST(EntropyCalibrator, MatchesTheDefinitionOnVariedDistributions) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 12; ++trial) {
    std::vector<float> v(20000);
    switch (trial % 4) {
      case 0: { std::normal_distribution<float> d(0, 1); for (auto& x : v) x = d(rng); break; }
      case 1: { std::exponential_distribution<float> d(3); for (auto& x : v) x = d(rng); break; }
      case 2: { std::student_t_distribution<float> d(2); for (auto& x : v) x = d(rng); break; }
      default: {  // ReLU output: many exact zeros and a long tail
        std::normal_distribution<float> d(0, 1);
        for (auto& x : v) x = std::max(0.0F, d(rng)) * std::max(0.0F, d(rng));
      }
    }
    AbsHistogram h = histogram_of(v, 512);
    std::vector<double> bins(h.counts().begin(), h.counts().end());
    const int expected = reference_entropy_bins(bins);
    EXPECT_DOUBLE_EQ(entropy_amax(h), expected * h.bin_width()) << "trial " << trial;
  }
}

TEST(EntropyCalibrator, ALoneOutlierKeepsTheFullRangeAndUniformDataIsNotClipped) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(200000);
  for (auto& x : v) x = d(rng);
  // Every shorter candidate has an empty last bin while mass lies beyond it: infinite divergence.
  v[0] = 100.0F;
  AbsHistogram h = histogram_of(v, 2048);
  EXPECT_DOUBLE_EQ(entropy_amax(h), h.range());

  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& x : v) x = u(rng);
  AbsHistogram hu = histogram_of(v, 2048);
  EXPECT_GT(entropy_amax(hu), 0.9 * hu.range());
}

TEST(EntropyCalibrator, EmptyHistogramGivesZero) {
  AbsHistogram h(2048);
  EXPECT_EQ(entropy_amax(h), 0.0);
}

TEST(PercentileCalibrator, FindsTheBinHoldingThePercentile) {
  AbsHistogram h(128);
  h.cover(128.0);
  std::vector<float> v;
  for (int i = 0; i < 100; ++i) v.push_back(static_cast<float>(i) + 0.5F);  // one per bin 0..99
  h.add(v);
  EXPECT_DOUBLE_EQ(percentile_amax(h, 50.0), 50.0);
  EXPECT_DOUBLE_EQ(percentile_amax(h, 100.0), 100.0);
  EXPECT_THROW(percentile_amax(h, 0.0), detrq::Error);
  EXPECT_THROW(percentile_amax(h, 101.0), detrq::Error);
}

TEST(MseCalibrator, KeepsAUniformRangeAndClipsAnOutlier) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(100000);
  for (auto& x : v) x = u(rng);
  AbsHistogram h = histogram_of(v, 2048);
  EXPECT_GT(mse_amax(h), 0.95);
  // One value at 50 among 1e5 in [-1, 1]: error(a) ~ (50 - a)^2 + 1e5 * (a / 127)^2 / 12, least
  // near a = 33 (clipping the outlier partly beats stretching every step).
  v[0] = 50.0F;
  AbsHistogram g = histogram_of(v, 2048);
  EXPECT_NEAR(mse_amax(g), 33.0, 4.0);  // bin centres, not the values, are quantized
}

TEST(ComputeAmax, MinMaxIsTheLargestFiniteMagnitude) {
  TensorStatistics s(128);
  std::vector<uint32_t> scratch(4 * 128, 0);
  std::vector<float> v{-3.0F, 2.0F, std::numeric_limits<float>::infinity()};
  s.observe(v, scratch);
  EXPECT_EQ(compute_amax(s, CalibrationMethod::kMinMax), 3.0);
  EXPECT_LE(compute_amax(s, CalibrationMethod::kEntropy), 3.0);
  EXPECT_EQ(parse_method("percentile"), CalibrationMethod::kPercentile);
  EXPECT_THROW(parse_method("kl"), detrq::Error);
}
