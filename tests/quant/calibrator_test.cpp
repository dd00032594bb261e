// Calibrators: the fast entropy search against a direct transcription of EntropyCalibration2's
// definition, and the simpler methods on distributions whose answer is known.
#include "detrq/quant/calibrator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "detrq/core/error.h"

using namespace detrq::quant;

namespace {

// The definition, spelled out bin by bin: O(bins^2), the way NVIDIA's reference computes it.
int reference_entropy_bins(std::vector<double> bins) {
  const int n = static_cast<int>(bins.size());
  bins[0] = bins[1];
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

// The MSE threshold from its definition, on the values themselves: of the thresholds a = i * bin width
// (i from 128 bins, the search's grid), the first with the least sum of (q(|v|) - |v|)^2, where q rounds to
// a step of a / 127 and clips at 127 steps. Values are given as (|v|, count) pairs.
double reference_mse_amax(const std::map<double, uint64_t>& values, double bin_width, int bins) {
  double best = std::numeric_limits<double>::infinity(), best_amax = 0;
  for (int i = 128; i <= bins; ++i) {
    const double amax = i * bin_width, step = amax / 127.0;
    double err = 0;
    for (const auto& [v, count] : values) {
      const double q = std::min(std::nearbyint(v / step), 127.0) * step;
      err += static_cast<double>(count) * (q - v) * (q - v);
    }
    if (err < best) {
      best = err;
      best_amax = amax;
    }
  }
  return best_amax;
}

// Values at bin centres (so that the histogram loses nothing): the search must land exactly on the
// definition's threshold.
TEST(MseCalibrator, KeepsAUniformRangeAndClipsAnOutlier) {
  constexpr int kBins = 2048;
  constexpr double kRange = 64.0, kWidth = kRange / kBins;  // 1/32: centres are exact in float
  auto at_centre = [](double v) { return (std::floor(std::fabs(v) / kWidth) + 0.5) * kWidth; };
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<float> v(100000);
  std::map<double, uint64_t> counted;
  for (auto& x : v) {
    x = static_cast<float>(at_centre(u(rng)));
    ++counted[x];
  }
  AbsHistogram h(kBins);
  h.cover(kRange);
  h.add(v);
  ASSERT_EQ(h.bin_width(), kWidth);
  // Uniform in [0, 1]: the least error keeps (nearly) the whole range.
  const double uniform = reference_mse_amax(counted, kWidth, kBins);
  EXPECT_GT(uniform, 0.95);
  EXPECT_EQ(mse_amax(h), uniform);
  // One value near 50 among 1e5 in [0, 1]: error(a) ~ (50 - a)^2 + 1e5 * (a / 127)^2 / 12, least near
  // a = 33 (clipping the outlier partly beats stretching every step).
  AbsHistogram g(kBins);
  g.cover(kRange);
  v[0] = static_cast<float>(at_centre(50.0));
  g.add(v);
  std::map<double, uint64_t> with_outlier;
  for (float x : v) ++with_outlier[x];
  const double clipped = reference_mse_amax(with_outlier, kWidth, kBins);
  EXPECT_NEAR(clipped, 33.0, 4.0);
  EXPECT_EQ(mse_amax(g), clipped);
}

TEST(ComputeAmax, MinMaxIsTheLargestFiniteMagnitude) {
  TensorStatistics s(128);
  std::vector<uint32_t> scratch(4 * 128, 0);
  std::vector<float> v{-3.0F, 2.0F, std::numeric_limits<float>::infinity()};
  s.observe(v, scratch);
  EXPECT_EQ(compute_amax(s, CalibrationMethod::kMinMax), 3.0);
  // 128 bins: entropy's only candidate is the whole range (its search starts at 128 bins), so it keeps 3.
  EXPECT_EQ(compute_amax(s, CalibrationMethod::kEntropy), 3.0);
  EXPECT_EQ(parse_method("percentile"), CalibrationMethod::kPercentile);
  EXPECT_THROW(parse_method("kl"), detrq::Error);
}
