// TensorStatistics: what calibration keeps about one float tensor over all images: finite min and
// max, how many values were non-finite, and the histogram of finite |x|.
#pragma once

#include <cstdint>
#include <limits>
#include <span>

#include "detrq/quant/abs_histogram.h"

namespace detrq::quant {

// Min, max and non-finite count of a block of values (one scan, no histogram).
struct ValueRange {
  float min = std::numeric_limits<float>::infinity();   // finite values only
  float max = -std::numeric_limits<float>::infinity();
  uint64_t nonfinite = 0;
  float max_abs() const noexcept;  // 0 when no finite value
  void merge(const ValueRange& other) noexcept;
};
ValueRange scan_values(std::span<const float> values) noexcept;

struct TensorStatistics {
  explicit TensorStatistics(int bins = AbsHistogram::kDefaultBins) : histogram(bins) {}

  ValueRange range;
  uint64_t count = 0;   // values seen, finite or not
  uint64_t batches = 0;  // times the tensor was observed (images)
  AbsHistogram histogram;

  uint64_t finite_count() const noexcept { return count - range.nonfinite; }
  double nonfinite_fraction() const noexcept {
    return count ? static_cast<double>(range.nonfinite) / static_cast<double>(count) : 0.0;
  }
  // Adds one observation, single-threaded. `scratch`: 4 * bins zeroed entries (see AbsHistogram).
  void observe(std::span<const float> values, std::span<uint32_t> scratch);
};

// Histogram of the finite values only (the slow path for blocks that hold inf or NaN).
void count_finite_into(const AbsHistogram& histogram, std::span<const float> values, std::span<uint32_t> scratch);

}  // namespace detrq::quant
