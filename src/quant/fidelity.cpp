// Fidelity metrics: SQNR and top-detection agreement.
#include "detrq/quant/fidelity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "detrq/core/error.h"

namespace detrq::quant {

void SqnrAccumulator::add(std::span<const float> reference, std::span<const float> test) {
  DETRQ_ASSERT(reference.size() == test.size(), "SQNR of outputs of different sizes");
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i], t = test[i];
    if (!std::isfinite(r) || !std::isfinite(t)) {
      ++skipped;
      continue;
    }
    signal += r * r;
    noise += (r - t) * (r - t);
  }
}

double SqnrAccumulator::db() const {
  if (signal == 0.0) return -std::numeric_limits<double>::infinity();
  if (noise == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

namespace {
std::vector<std::pair<int64_t, int64_t>> top_k(std::span<const float> logits, int64_t queries, int64_t classes, int k) {
  std::vector<std::pair<float, std::pair<int64_t, int64_t>>> best;
  for (int64_t q = 0; q < queries; ++q) {
    const float* row = logits.data() + q * classes;
    int64_t c = -1;  // the best class with a finite logit: NaN and infinities rank nothing
    for (int64_t j = 0; j < classes; ++j) {
      if (std::isfinite(row[j]) && (c < 0 || row[j] > row[c])) c = j;
    }
    if (c >= 0) best.push_back({row[c], {q, c}});
  }
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(k), best.size());
  std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(n), best.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::pair<int64_t, int64_t>> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(best[i].second);
  return out;
}
}  // namespace

double top_detection_agreement(std::span<const float> reference, std::span<const float> test, int64_t queries,
                               int64_t classes, int k) {
  DETRQ_ASSERT(reference.size() == test.size() && static_cast<int64_t>(reference.size()) == queries * classes,
               "logit shapes differ");
  auto a = top_k(reference, queries, classes, k);
  auto b = top_k(test, queries, classes, k);
  if (a.empty()) return -1.0;  // nothing to agree with: no figure, never 100%
  std::set<std::pair<int64_t, int64_t>> bs(b.begin(), b.end());
  int agree = 0;
  for (const auto& p : a) agree += bs.count(p) ? 1 : 0;
  return static_cast<double>(agree) / static_cast<double>(a.size());
}

}  // namespace detrq::quant
