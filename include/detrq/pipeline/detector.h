// Detector: an RF-DETR model ready to detect, from an ONNX file or a CPU engine file: letterbox the
// image, run the session, post-process into named boxes in the image's pixels.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "detrq/runtime/cpu_target.h"
#include "detrq/vision/rfdetr_postprocess.h"
#include "detrq/vision/rgb_image.h"

namespace detrq::pipeline {

struct DetectorOptions {
  int threads = 0;  // 0: one per core
  // What the session may use (`--cpu-features` narrows the host's); an engine whose states need more is
  // refused (kUnsupported).
  runtime::CpuTarget target = runtime::CpuTarget::host();
};

class Detector {
 public:
  // Opens `model`: a detrq engine file (recognized by its magic bytes, CPU features checked against the
  // target) or an ONNX
  // model. Checks the RF-DETR contract: one float32 input [1, 3, S, S], outputs `dets` and `labels`.
  static Detector open(const std::filesystem::path& model, const DetectorOptions& options = {});
  ~Detector();
  Detector(Detector&&) noexcept;
  Detector& operator=(Detector&&) noexcept;

  std::vector<vision::Detection> detect(const vision::RgbImage& image,
                                        const vision::PostprocessOptions& options = {});

  int input_size() const noexcept;
  const vision::ClassNames& class_names() const noexcept;
  // "model.engine (detrq CPU engine, int8, packed for avx2, fma)" or "model.onnx (ONNX)".
  const std::string& description() const noexcept;

 private:
  Detector();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detrq::pipeline
