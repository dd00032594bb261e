// AbsHistogram: a fixed number of equal-width bins over [0, range) counting |x|, whose range grows by
// powers of two (merging neighbouring bins) so that no value seen so far is ever dropped.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace detrq::quant {

class AbsHistogram {
 public:
  static constexpr int kDefaultBins = 2048;

  explicit AbsHistogram(int bins = kDefaultBins);

  int bins() const noexcept { return static_cast<int>(counts_.size()); }
  // Upper edge of the last bin; 0 until the first non-zero value arrives.
  double range() const noexcept { return range_; }
  double bin_width() const noexcept { return range_ / static_cast<double>(counts_.size()); }
  std::span<const uint64_t> counts() const noexcept { return counts_; }
  uint64_t total() const noexcept;

  // Makes the range at least `max_abs`: the first time it is set to max_abs, later it doubles (merging
  // bin pairs) until it covers max_abs. Counts are kept; only resolution is lost.
  void cover(double max_abs);
  // Adds |x| of every value; all must be finite and <= range() (cover() first). Values equal to
  // range() land in the last bin.
  void add(std::span<const float> values);
  // Adds raw counts built on the same bins (a worker's partial histogram).
  void add_counts(std::span<const uint32_t> counts);
  // Folds another histogram in (ranges may differ; the result covers both).
  void merge(const AbsHistogram& other);

  // Adds the histogram of `values` to scratch[0, bins()); scratch holds 4 * bins() entries, of which
  // [bins(), 4 * bins()) must be zero on entry and are zero again on return. Used by add() and by
  // parallel observers that keep one scratch per worker.
  void count_into(std::span<const float> values, std::span<uint32_t> scratch) const;

 private:
  std::vector<uint64_t> counts_;
  double range_ = 0.0;
};

}  // namespace detrq::quant
