// TensorRT engine builder, compiled only where CMake finds TensorRT. It is kept thin (parse the ONNX,
// set the precision flags, serialize the plan) because it cannot be tested on the project's machines.
#pragma once

#include "detrq/engine/builder.h"

namespace detrq::engine::tensorrt {

// True when the CUDA runtime reports at least one device.
bool gpu_present() noexcept;

class TensorRtBuilder final : public Builder {
 public:
  const char* name() const noexcept override { return "tensorrt"; }
  // With request.qdq: a strongly typed network (TensorRT 10 and 11), precisions from the Q/DQ nodes.
  // With request.onnx and request.calibration_cache: INT8 and FP16 enabled, scales from the cache
  // (implicit quantization, TensorRT 10 only; TensorRT 11 removed it).
  BuildResult build(const BuildRequest& request) override;
};

}  // namespace detrq::engine::tensorrt
