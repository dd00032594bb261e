// TensorRT builder (see tensorrt_builder.h). Untested on the project's machines (no GPU, no TensorRT);
// the README says so.
#include "tensorrt_builder.h"

#include <NvInfer.h>
#include <NvOnnxParser.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"

namespace detrq::engine::tensorrt {

namespace {

class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kWARNING) core::log_warn("TensorRT: {}", msg);
    else if (severity == Severity::kINFO) core::log_debug("TensorRT: {}", msg);
  }
};

#if NV_TENSORRT_MAJOR < 11
// Hands TensorRT the scales of an existing cache; it never asks for a batch when the cache is complete.
class CacheCalibrator final : public nvinfer1::IInt8EntropyCalibrator2 {
 public:
  explicit CacheCalibrator(std::string cache) : cache_(std::move(cache)) {}
  int32_t getBatchSize() const noexcept override { return 1; }
  bool getBatch(void**, const char**, int32_t) noexcept override { return false; }
  const void* readCalibrationCache(std::size_t& length) noexcept override {
    length = cache_.size();
    return cache_.data();
  }
  void writeCalibrationCache(const void*, std::size_t) noexcept override {}

 private:
  std::string cache_;
};
#endif

}  // namespace

bool gpu_present() noexcept {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

BuildResult TensorRtBuilder::build(const BuildRequest& request) {
  const bool qdq = !request.qdq.empty();
  const std::filesystem::path source = qdq ? request.qdq : request.onnx;
  if (source.empty()) throw Error(ErrorKind::kUsage, "build-engine", "no model given");
  if (!qdq && request.calibration_cache.empty()) {
    throw Error(ErrorKind::kUsage, "build-engine", "TensorRT needs --qdq, or --onnx with --cache");
  }
  Logger logger;
  std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
  if (!builder) throw_unsupported("tensorrt", "could not create a TensorRT builder", "is a GPU and its driver present?");
  uint32_t flags = 0;
  if (qdq) flags |= 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
  std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(flags));
  std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*network, logger));
  if (!parser->parseFromFile(source.c_str(), static_cast<int>(nvinfer1::ILogger::Severity::kWARNING))) {
    std::string errors;
    for (int32_t i = 0; i < parser->getNbErrors(); ++i) errors += std::string(" ") + parser->getError(i)->desc();
    throw_invalid(source.string(), "TensorRT's ONNX parser refused the model:" + errors);
  }
  std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
#if NV_TENSORRT_MAJOR < 11
  std::unique_ptr<CacheCalibrator> calibrator;
  if (!qdq) {
    config->setFlag(nvinfer1::BuilderFlag::kINT8);
    config->setFlag(nvinfer1::BuilderFlag::kFP16);
    calibrator = std::make_unique<CacheCalibrator>(core::read_file(request.calibration_cache));
    config->setInt8Calibrator(calibrator.get());
  }
#else
  if (!qdq) {
    throw_unsupported(source.string(), "TensorRT 11 has no implicit INT8 calibration",
                      "build from the Q/DQ model with --qdq");
  }
#endif
  std::unique_ptr<nvinfer1::IHostMemory> plan(builder->buildSerializedNetwork(*network, *config));
  if (!plan) throw Error(ErrorKind::kFailure, source.string(), "TensorRT could not build an engine (see its log above)");
  core::write_file_atomic(request.output, std::string_view(static_cast<const char*>(plan->data()), plan->size()));
  BuildResult result;
  result.backend = "tensorrt";
  result.description = source.string() + " -> " + request.output.string() + ": TensorRT " +
                       std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) +
                       (qdq ? " plan (strongly typed Q/DQ)" : " plan (INT8 + FP16 from the calibration cache)");
  return result;
}

}  // namespace detrq::engine::tensorrt
