// Builder: turns a prepared model (Q/DQ ONNX, or FP32 ONNX with a TensorRT calibration cache) into an
// engine for one backend. TensorRT builds slowly into a plan for one GPU; the CPU engine does the same
// for detrq's own runtime. Building is separate from running, as in TensorRT.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace detrq::engine {

enum class Backend { kAuto, kCpu, kTensorRt };

// "auto", "cpu", "tensorrt" -> Backend; throws kUsage otherwise.
Backend parse_backend(const std::string& name);
const char* backend_name(Backend backend) noexcept;

struct BuildRequest {
  std::filesystem::path qdq;                // explicitly quantized ONNX (preferred)
  std::filesystem::path onnx;               // FP32 ONNX (TensorRT: with `calibration_cache`)
  std::filesystem::path calibration_cache;  // TensorRT calibration cache for `onnx`
  std::filesystem::path output;
  // CPU engine: the CPU features to build for; unset means this machine's.
  std::optional<std::vector<std::string>> cpu_features;
  int threads = 0;
};

struct BuildResult {
  std::string backend;      // "cpu" or "tensorrt"
  std::string description;  // one line on what was built
};

class Builder {
 public:
  virtual ~Builder() = default;
  virtual const char* name() const noexcept = 0;
  virtual BuildResult build(const BuildRequest& request) = 0;
};

// True when detrq was configured with TensorRT (the tensorrt/ builder is compiled in).
bool tensorrt_compiled() noexcept;

// The builder for `backend`; kAuto picks TensorRT when compiled in and a GPU is present, else the CPU.
// Throws kUnsupported for kTensorRt when detrq was built without TensorRT.
std::unique_ptr<Builder> make_builder(Backend backend);

}  // namespace detrq::engine
