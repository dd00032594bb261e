// Fidelity metrics of a quantized model against its FP32 original: SQNR over finite values, and how
// many of the top detections (by class logit) agree.
#pragma once

#include <cstdint>
#include <span>

namespace detrq::quant {

// Running signal and noise energy of one output over several images.
struct SqnrAccumulator {
  double signal = 0.0;
  double noise = 0.0;
  uint64_t skipped = 0;  // positions where either value is non-finite (masked logits)
  void add(std::span<const float> reference, std::span<const float> test);
  // 10 log10(signal / noise); +inf when identical, -inf when the reference is all zero.
  double db() const;
};

// Logits [queries, classes]: the fraction of the reference's top-k (query, best class) pairs, ranked
// by their best class logit, that the test also has among its top k with the same class. Non-finite logits
// rank nothing; a reference without a finite logit has no top detection and gives -1 (no figure).
double top_detection_agreement(std::span<const float> reference, std::span<const float> test, int64_t queries,
                               int64_t classes, int k = 10);

}  // namespace detrq::quant
