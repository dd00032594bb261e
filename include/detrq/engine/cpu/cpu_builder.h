// CpuBuilder: builds the CPU engine file: loads the ONNX, quantizes constant weights, lets the runtime
// fold constants (except weights' DequantizeLinear, so int8 weights are stored as int8), drop dead nodes,
// pack weights for the requested CPU target (any set, wider than this machine's too) and plan memory,
// and writes that optimized graph with its kernels' packed weights and the CPU features they need. Loading the engine maps it and restores the packed weights without packing.
#pragma once

#include "detrq/engine/builder.h"

namespace detrq::engine::cpu {

class CpuBuilder final : public Builder {
 public:
  const char* name() const noexcept override { return "cpu"; }
  // Uses request.qdq, else request.onnx (run in float32: the CPU engine has no implicit quantization, so
  // a calibration cache alone is refused with a hint to pass the Q/DQ model).
  BuildResult build(const BuildRequest& request) override;
};

}  // namespace detrq::engine::cpu
