// AbsHistogram: counting |x| into equal-width bins whose range grows by merging bin pairs.
#include "detrq/quant/abs_histogram.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "detrq/core/error.h"

namespace detrq::quant {

AbsHistogram::AbsHistogram(int bins) {
  // A power of two so that doubling the range merges whole bin pairs.
  if (bins < 128 || (bins & (bins - 1)) != 0) {
    throw_invalid("histogram", "bin count " + std::to_string(bins) + " is not a power of two >= 128");
  }
  counts_.assign(static_cast<std::size_t>(bins), 0);
}

uint64_t AbsHistogram::total() const noexcept {
  uint64_t t = 0;
  for (uint64_t c : counts_) t += c;
  return t;
}

void AbsHistogram::cover(double max_abs) {
  if (!(max_abs > range_)) return;
  if (!std::isfinite(max_abs)) throw_invalid("histogram", "range must be finite");
  if (range_ == 0.0) {
    range_ = max_abs;
    return;
  }
  int shift = 0;
  double r = range_;
  while (r < max_abs) {
    r *= 2.0;
    ++shift;
  }
  const std::size_t n = counts_.size();
  const std::size_t group = shift >= 63 ? n : std::min<std::size_t>(n, std::size_t{1} << shift);
  for (std::size_t j = 0; j < n; ++j) {
    uint64_t sum = 0;
    if (j < n / group) {
      for (std::size_t k = j * group; k < (j + 1) * group; ++k) sum += counts_[k];
    } else if (j == 0) {
      for (uint64_t c : counts_) sum += c;
    }
    counts_[j] = sum;
  }
  range_ = r;
}

void AbsHistogram::count_into(std::span<const float> values, std::span<uint32_t> scratch) const {
  const int last = bins() - 1;
  if (range_ == 0.0) {
    scratch[0] += static_cast<uint32_t>(values.size());  // every value is 0
    return;
  }
  const float inv_width = static_cast<float>(static_cast<double>(bins()) / range_);
  // Four interleaved sub-histograms break the store-to-load chain when neighbouring values share a
  // bin (ReLU zeros, constant regions); they are summed at the end.
  const std::size_t nb = static_cast<std::size_t>(bins());
  DETRQ_ASSERT(scratch.size() >= 4 * nb, "histogram scratch too small");
  uint32_t* h = scratch.data();
  uint32_t* h1 = h + nb;
  uint32_t* h2 = h1 + nb;
  uint32_t* h3 = h2 + nb;
  auto bin = [&](float x) { return std::min(static_cast<int>(std::fabs(x) * inv_width), last); };
  std::size_t i = 0;
  const std::size_t n = values.size();
  for (; i + 4 <= n; i += 4) {
    ++h[bin(values[i])];
    ++h1[bin(values[i + 1])];
    ++h2[bin(values[i + 2])];
    ++h3[bin(values[i + 3])];
  }
  for (; i < n; ++i) ++h[bin(values[i])];
  for (std::size_t b = 0; b < nb; ++b) {
    h[b] += h1[b] + h2[b] + h3[b];
    h1[b] = h2[b] = h3[b] = 0;
  }
}

void AbsHistogram::add(std::span<const float> values) {
  std::vector<uint32_t> scratch(4 * counts_.size(), 0);
  constexpr std::size_t kChunk = std::size_t{1} << 30;  // keeps uint32 counts from overflowing
  for (std::size_t start = 0; start < values.size(); start += kChunk) {
    count_into(values.subspan(start, std::min(kChunk, values.size() - start)), scratch);
    add_counts(std::span<const uint32_t>(scratch).first(counts_.size()));
    std::fill(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(counts_.size()), 0);
  }
}

void AbsHistogram::add_counts(std::span<const uint32_t> counts) {
  DETRQ_ASSERT(counts.size() == counts_.size(), "histogram bin counts differ");
  for (std::size_t b = 0; b < counts_.size(); ++b) counts_[b] += counts[b];
}

void AbsHistogram::merge(const AbsHistogram& other) {
  DETRQ_ASSERT(other.counts_.size() == counts_.size(), "histogram bin counts differ");
  if (other.range_ == 0.0) {
    counts_[0] += other.total();
    return;
  }
  cover(other.range_);
  // Each of the other's bins goes to the bin holding its centre: exact when the ranges are equal or
  // differ by a power of two (the usual case: both grew from similar starts).
  const double scale = other.bin_width() / bin_width();
  const int last = bins() - 1;
  for (std::size_t b = 0; b < other.counts_.size(); ++b) {
    if (other.counts_[b] == 0) continue;
    int target = std::min(static_cast<int>((static_cast<double>(b) + 0.5) * scale), last);
    counts_[static_cast<std::size_t>(target)] += other.counts_[b];
  }
}

}  // namespace detrq::quant
