// TensorStatistics: one scan for range and non-finite count, then the |x| histogram.
#include "detrq/quant/tensor_statistics.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace detrq::quant {
namespace {

// Float bits mapped to integers with the same order, so that the scan vectorizes as integer code
// (float min/max reductions do not vectorize without -ffast-math).
inline int32_t ordered_key(int32_t bits) noexcept { return bits >= 0 ? bits : bits ^ 0x7fffffff; }
inline float key_to_float(int32_t key) noexcept {
  int32_t bits = key >= 0 ? key : key ^ 0x7fffffff;
  return std::bit_cast<float>(bits);
}

}  // namespace

float ValueRange::max_abs() const noexcept {
  if (!(min <= max)) return 0.0F;
  return std::max(std::fabs(min), std::fabs(max));
}

void ValueRange::merge(const ValueRange& other) noexcept {
  min = std::min(min, other.min);
  max = std::max(max, other.max);
  nonfinite += other.nonfinite;
}

ValueRange scan_values(std::span<const float> values) noexcept {
  const int32_t* bits = reinterpret_cast<const int32_t*>(values.data());
  const std::size_t n = values.size();
  int32_t lo = std::numeric_limits<int32_t>::max();
  int32_t hi = std::numeric_limits<int32_t>::min();
  uint32_t bad = 0;
  ValueRange r;
  constexpr std::size_t kBlock = std::size_t{1} << 30;  // keeps the uint32 counter exact
  for (std::size_t start = 0; start < n; start += kBlock) {
    const std::size_t end = std::min(n, start + kBlock);
    bad = 0;
    for (std::size_t i = start; i < end; ++i) {
      const int32_t b = bits[i];
      const bool finite = (b & 0x7fffffff) < 0x7f800000;
      const int32_t key = ordered_key(b);
      bad += finite ? 0U : 1U;
      lo = finite && key < lo ? key : lo;
      hi = finite && key > hi ? key : hi;
    }
    r.nonfinite += bad;
  }
  if (lo <= hi) {
    r.min = key_to_float(lo);
    r.max = key_to_float(hi);
  }
  return r;
}

void count_finite_into(const AbsHistogram& histogram, std::span<const float> values, std::span<uint32_t> scratch) {
  // Copy finite values through a small buffer so the fast counting loop stays branch-free.
  float buffer[1024];
  std::size_t used = 0;
  for (float v : values) {
    if (std::isfinite(v)) buffer[used++] = v;
    if (used == std::size(buffer)) {
      histogram.count_into({buffer, used}, scratch);
      used = 0;
    }
  }
  if (used) histogram.count_into({buffer, used}, scratch);
}

void TensorStatistics::observe(std::span<const float> values, std::span<uint32_t> scratch) {
  ValueRange r = scan_values(values);
  range.merge(r);
  count += values.size();
  ++batches;
  histogram.cover(r.max_abs());
  const std::size_t nb = static_cast<std::size_t>(histogram.bins());
  constexpr std::size_t kChunk = std::size_t{1} << 30;
  for (std::size_t start = 0; start < values.size(); start += kChunk) {
    auto part = values.subspan(start, std::min(kChunk, values.size() - start));
    if (r.nonfinite) {
      count_finite_into(histogram, part, scratch);
    } else {
      histogram.count_into(part, scratch);
    }
    histogram.add_counts(scratch.first(nb));
    std::fill(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(nb), 0);
  }
}

}  // namespace detrq::quant
