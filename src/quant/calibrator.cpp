// Calibrators: entropy (TensorRT EntropyCalibration2), minmax, percentile and mse thresholds.
#include "detrq/quant/calibrator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "detrq/core/error.h"

namespace detrq::quant {
namespace {
constexpr int kLevels = 128;     // int8 magnitudes 0..127
constexpr int kStartBin = 128;   // the smallest threshold tried, in bins
}  // namespace

const char* method_name(CalibrationMethod method) noexcept {
  switch (method) {
    case CalibrationMethod::kEntropy: return "entropy";
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kMse: return "mse";
  }
  return "unknown";
}

CalibrationMethod parse_method(const std::string& name) {
  for (CalibrationMethod m : {CalibrationMethod::kEntropy, CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                              CalibrationMethod::kMse}) {
    if (name == method_name(m)) return m;
  }
  throw Error(ErrorKind::kUsage, "--method", "unknown calibration method '" + name + "'",
              "use entropy, minmax, percentile or mse");
}

double entropy_amax(const AbsHistogram& histogram) {
  const int n = histogram.bins();
  std::vector<double> c(histogram.counts().begin(), histogram.counts().end());
  c[0] = c[1];
  // Prefix sums make each candidate O(levels) instead of O(bins): count, non-empty bins, c*log(c).
  std::vector<double> sum(static_cast<std::size_t>(n) + 1, 0.0), clogc(static_cast<std::size_t>(n) + 1, 0.0);
  std::vector<int> nonzero(static_cast<std::size_t>(n) + 1, 0);
  for (int k = 0; k < n; ++k) {
    const double v = c[static_cast<std::size_t>(k)];
    sum[k + 1] = sum[k] + v;
    nonzero[k + 1] = nonzero[k] + (v > 0 ? 1 : 0);
    clogc[k + 1] = clogc[k] + (v > 0 ? v * std::log(v) : 0.0);
  }
  const double total = sum[n];
  if (total <= 0 || histogram.range() <= 0) return 0.0;
  const double log_total = std::log(total);

  double best = std::numeric_limits<double>::infinity();
  int best_i = n;
  for (int i = kStartBin; i <= n; ++i) {
    const double outliers = total - sum[i];
    const double last = c[static_cast<std::size_t>(i - 1)];
    if (last == 0 && outliers > 0) continue;  // the reference has mass where the candidate has none
    const double p_last = last + outliers;
    // sum_k p_k log p_k over the reference distribution (unnormalized).
    double plogp = clogc[i - 1] + (p_last > 0 ? p_last * std::log(p_last) : 0.0);
    // sum_k p_k log q_k, where q_k is the level's mean over its non-empty bins.
    double plogq = 0.0;
    for (int j = 0; j < kLevels; ++j) {
      const int start = (j * i + kLevels - 1) / kLevels;
      const int end = ((j + 1) * i + kLevels - 1) / kLevels;
      const int nz = nonzero[end] - nonzero[start];
      if (nz == 0) continue;
      double level_sum = sum[end] - sum[start];
      double mass = level_sum + (end == i ? outliers : 0.0);
      plogq += mass * std::log(level_sum / nz);
    }
    const double q_total = sum[i];
    // KL(p/P || q/Q) with P = total and Q = sum of q = sum[i].
    const double kl = (plogp - plogq) / total + std::log(q_total) - log_total;
    // Ties (within rounding) go to the larger threshold, as the reference takes the last argmin.
    if (kl <= best + 1e-12) {
      best = std::min(best, kl);
      best_i = i;
    }
  }
  return best_i * histogram.bin_width();
}

double percentile_amax(const AbsHistogram& histogram, double percentile) {
  if (!(percentile > 0 && percentile <= 100)) {
    throw Error(ErrorKind::kUsage, "--percentile", "percentile must be in (0, 100]", "for example 99.99");
  }
  const uint64_t total = histogram.total();
  if (total == 0 || histogram.range() <= 0) return 0.0;
  const double target = percentile / 100.0 * static_cast<double>(total);
  uint64_t cumulative = 0;
  const auto counts = histogram.counts();
  for (std::size_t b = 0; b < counts.size(); ++b) {
    cumulative += counts[b];
    if (static_cast<double>(cumulative) >= target) return static_cast<double>(b + 1) * histogram.bin_width();
  }
  return histogram.range();
}

double mse_amax(const AbsHistogram& histogram) {
  const int n = histogram.bins();
  const double w = histogram.bin_width();
  if (histogram.total() == 0 || w <= 0) return 0.0;
  std::vector<int> used;
  for (int b = 0; b < n; ++b) {
    if (histogram.counts()[static_cast<std::size_t>(b)]) used.push_back(b);
  }
  double best = std::numeric_limits<double>::infinity();
  int best_i = n;
  for (int i = kStartBin; i <= n; ++i) {
    const double amax = i * w;
    const double step = amax / 127.0;
    double err = 0.0;
    for (int b : used) {
      const double centre = (b + 0.5) * w;
      const double q = std::min(std::nearbyint(centre / step), 127.0) * step;
      err += static_cast<double>(histogram.counts()[static_cast<std::size_t>(b)]) * (q - centre) * (q - centre);
    }
    if (err < best) {
      best = err;
      best_i = i;
    }
  }
  return best_i * w;
}

double compute_amax(const TensorStatistics& stats, CalibrationMethod method, const CalibratorOptions& options) {
  switch (method) {
    case CalibrationMethod::kMinMax: return stats.range.max_abs();
    case CalibrationMethod::kEntropy: return std::min<double>(entropy_amax(stats.histogram), stats.range.max_abs());
    case CalibrationMethod::kPercentile:
      return std::min<double>(percentile_amax(stats.histogram, options.percentile), stats.range.max_abs());
    case CalibrationMethod::kMse: return std::min<double>(mse_amax(stats.histogram), stats.range.max_abs());
  }
  return 0.0;
}

}  // namespace detrq::quant
