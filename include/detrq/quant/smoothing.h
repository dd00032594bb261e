// SmoothQuant-style outlier migration: a few LayerNorm output channels far larger than the rest (as
// pretrained DINOv2 backbones have) make per-tensor INT8 activations coarse for every channel. Where a
// LayerNormalization feeds only MatMuls by constant weights, channel j of its output is divided by
// s_j (folded into gamma_j and beta_j) and row j of each weight multiplied by s_j: the same function,
// with the range moved from the activation into the per-channel-quantized weights.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace detrq::quant {

// One LayerNorm whose output (`activation`, channels on the last axis) feeds only `matmuls` as their
// A input, each with a 2-D float32 initializer B [channels, N].
struct SmoothingSite {
  std::string layernorm;
  std::string activation;
  std::vector<std::string> matmuls;
};

std::vector<SmoothingSite> find_smoothing_sites(const onnx::Model& model);

// Per-channel max |x| over the last axis of watched float32 tensors.
class ChannelMaxObserver : public runtime::Observer {
 public:
  explicit ChannelMaxObserver(std::set<std::string> names) : names_(std::move(names)) {}
  void on_tensor(const std::string& name, const core::Tensor& value) override;
  const std::map<std::string, std::vector<float>>& maxima() const noexcept { return maxima_; }

 private:
  std::set<std::string> names_;
  std::map<std::string, std::vector<float>> maxima_;
};

struct SmoothedSite {
  std::string layernorm;
  double max_factor = 1.0;  // the largest s_j (an activation channel divided by it)
  double min_factor = 1.0;
};

// Applies s_j = amax_x(j)^alpha / amax_w(j)^(1 - alpha), rounded to a power of two so the FP32 model
// computes bit for bit what it did (a power-of-two scale changes only exponents). Initializers that
// other nodes also read are copied first. Sites without maxima are left alone.
std::vector<SmoothedSite> apply_smoothing(onnx::Model& model, const std::vector<SmoothingSite>& sites,
                                          const std::map<std::string, std::vector<float>>& channel_max,
                                          double alpha);

}  // namespace detrq::quant
