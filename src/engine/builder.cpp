// Backend selection (see builder.h).
#include "detrq/engine/builder.h"

#include "detrq/core/error.h"
#include "detrq/engine/cpu/cpu_builder.h"

#ifdef DETRQ_WITH_TENSORRT
#include "engine/tensorrt/tensorrt_builder.h"
#endif

namespace detrq::engine {

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "cpu") return Backend::kCpu;
  if (name == "tensorrt") return Backend::kTensorRt;
  throw Error(ErrorKind::kUsage, "--backend", "unknown backend '" + name + "'", "auto, cpu or tensorrt");
}

const char* backend_name(Backend backend) noexcept {
  switch (backend) {
    case Backend::kAuto: return "auto";
    case Backend::kCpu: return "cpu";
    case Backend::kTensorRt: return "tensorrt";
  }
  return "?";
}

bool tensorrt_compiled() noexcept {
#ifdef DETRQ_WITH_TENSORRT
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Builder> make_builder(Backend backend) {
#ifdef DETRQ_WITH_TENSORRT
  if (backend == Backend::kTensorRt || (backend == Backend::kAuto && tensorrt::gpu_present())) {
    return std::make_unique<tensorrt::TensorRtBuilder>();
  }
#else
  if (backend == Backend::kTensorRt) {
    throw_unsupported("--backend tensorrt", "this detrq was built without TensorRT",
                      "install TensorRT and reconfigure (cmake finds it by TensorRT_ROOT), or use --backend cpu");
  }
#endif
  return std::make_unique<cpu::CpuBuilder>();
}

}  // namespace detrq::engine
