// StatisticsObserver: the runtime Observer that calibration attaches to a Session; it keeps a
// TensorStatistics per float32 tensor and nothing else, so memory does not grow with the image count.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "detrq/core/thread_pool.h"
#include "detrq/quant/tensor_statistics.h"
#include "detrq/runtime/session.h"

namespace detrq::quant {

class StatisticsObserver : public runtime::Observer {
 public:
  // threads > 1 splits large tensors over a pool of its own (the session's workers are idle while
  // an observer runs).
  explicit StatisticsObserver(int threads = 1, int bins = AbsHistogram::kDefaultBins);
  ~StatisticsObserver() override;

  // Restricts observation to these names (empty: every float32 tensor).
  void watch_only(std::set<std::string> names) { watched_ = std::move(names); }

  void on_tensor(const std::string& name, const core::Tensor& value) override;
  // Observes a tensor directly (graph inputs, tests).
  void observe(const std::string& name, std::span<const float> values);

  const std::map<std::string, TensorStatistics>& statistics() const noexcept { return stats_; }
  std::size_t memory_bytes() const noexcept;

 private:
  int bins_;
  std::set<std::string> watched_;
  std::map<std::string, TensorStatistics> stats_;
  std::unique_ptr<core::ThreadPool> pool_;
  std::vector<std::vector<uint32_t>> scratch_;  // one per parallel chunk, 4 * bins each
  std::vector<ValueRange> chunk_ranges_;
};

}  // namespace detrq::quant
