// StatisticsObserver: per-tensor statistics, with large tensors split over a private thread pool.
#include "detrq/quant/statistics_observer.h"

#include <algorithm>

namespace detrq::quant {
namespace {
// Below this many values the split costs more than it saves.
constexpr std::size_t kParallelThreshold = std::size_t{1} << 17;
}  // namespace

StatisticsObserver::StatisticsObserver(int threads, int bins) : bins_(bins) {
  if (threads > 1) pool_ = std::make_unique<core::ThreadPool>(threads);
  const std::size_t chunks = pool_ ? static_cast<std::size_t>(pool_->size()) : 1;
  scratch_.assign(chunks, std::vector<uint32_t>(4 * static_cast<std::size_t>(bins), 0));
  chunk_ranges_.resize(chunks);
}

StatisticsObserver::~StatisticsObserver() = default;

void StatisticsObserver::on_tensor(const std::string& name, const core::Tensor& value) {
  if (value.dtype() != core::DType::kFloat32) return;
  if (!watched_.empty() && watched_.count(name) == 0) return;
  observe(name, value.span<float>());
}

void StatisticsObserver::observe(const std::string& name, std::span<const float> values) {
  auto it = stats_.find(name);
  if (it == stats_.end()) it = stats_.emplace(name, TensorStatistics(bins_)).first;
  TensorStatistics& s = it->second;
  if (!pool_ || values.size() < kParallelThreshold || values.size() >= (std::size_t{1} << 31)) {
    s.observe(values, scratch_[0]);
    return;
  }
  // Parallel: scan ranges per chunk, grow the histogram once, count per chunk, then fold.
  const int64_t chunks = static_cast<int64_t>(scratch_.size());
  const std::size_t per = (values.size() + scratch_.size() - 1) / scratch_.size();
  auto part = [&](int64_t c) {
    std::size_t begin = std::min(values.size(), static_cast<std::size_t>(c) * per);
    return values.subspan(begin, std::min(per, values.size() - begin));
  };
  pool_->parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) chunk_ranges_[static_cast<std::size_t>(c)] = scan_values(part(c));
  });
  ValueRange r;
  for (const ValueRange& cr : chunk_ranges_) r.merge(cr);
  s.range.merge(r);
  s.count += values.size();
  ++s.batches;
  s.histogram.cover(r.max_abs());
  pool_->parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      auto& scratch = scratch_[static_cast<std::size_t>(c)];
      if (chunk_ranges_[static_cast<std::size_t>(c)].nonfinite) {
        count_finite_into(s.histogram, part(c), scratch);
      } else {
        s.histogram.count_into(part(c), scratch);
      }
    }
  });
  const std::size_t nb = static_cast<std::size_t>(bins_);
  for (auto& scratch : scratch_) {
    s.histogram.add_counts(std::span<const uint32_t>(scratch).first(nb));
    std::fill(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(nb), 0);
  }
}

std::size_t StatisticsObserver::memory_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const auto& [name, s] : stats_) bytes += name.size() + sizeof(s) + s.histogram.counts().size_bytes();
  for (const auto& scratch : scratch_) bytes += scratch.size() * sizeof(uint32_t);
  return bytes;
}

}  // namespace detrq::quant
