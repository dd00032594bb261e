// The README.md model card published with a prepared model: Hub metadata (YAML front matter), the files,
// how to build an engine (detrq, trtexec on TensorRT 10 and 11), how to run the Q/DQ model in
// onnxruntime, and the measured INT8-versus-FP32 accuracy.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "detrq/vision/coco_eval.h"

namespace detrq::pipeline {

struct ModelCardFile {
  std::string name;         // path in the repository
  std::string description;  // one line
  uint64_t size = 0;        // bytes
  std::string sha256;
};

struct AccuracyFigures {
  std::string dataset;            // "data/shapes_val (200 images)"
  std::string runtime;            // what ran both models, e.g. "detrq CPU runtime 0.1.0"
  vision::CocoMetrics fp32;
  vision::CocoMetrics int8;
};

struct ModelCardInfo {
  std::string repo_id;                // ORG/NAME
  std::string title;                  // "RF-DETR small, INT8-ready"
  std::string license = "apache-2.0";
  std::string base_model;             // optional Hub id of the original weights
  int input_size = 512;
  std::string input_name = "input";
  std::string calibration_method;     // entropy | minmax | percentile | mse
  int calibration_images = 0;
  std::string calibration_source;     // a dataset name a Hub reader knows: "COCO val2017", "shapes_calib", a folder's name
  std::optional<double> int8_mac_share;  // of the Q/DQ model's Conv/MatMul/Gemm multiply-adds (calibration.json)
  int num_classes = 0;                // labels width (category ids 0..num_classes-1); 0: unknown
  int num_queries = 0;                // dets/labels second dimension; 0: unknown
  std::vector<std::pair<int64_t, std::string>> class_names;  // the model's `class_names` metadata; empty: none
  // The Q/DQ model's Conv/MatMul/Gemm layers (calibration.json): how many, and those left in float with why.
  int layers_total = 0;
  std::vector<std::pair<std::string, std::string>> float_layers;
  int cache_tensors = 0;              // tensors with a scale in calibration.cache (calibration.json's "calibrated")
  std::vector<ModelCardFile> files;
  std::optional<AccuracyFigures> accuracy;  // absent: the card says it was not measured
  std::string detrq_version;
};

// The card as Markdown with YAML front matter (license, tags, pipeline_tag, library_name).
std::string render_model_card(const ModelCardInfo& info);

// The facts a card states about the run and the model, from the run and the model rather than from the
// options that asked for them: the images calibrate really used, the layers it left in float and the
// tensors it gave a scale (calibration.json), the input name and size, queries and classes the ONNX model
// declares and its `class_names` metadata (left unset where it declares none).
void describe_run(ModelCardInfo& info, const std::filesystem::path& calibration_table,
                  const std::filesystem::path& onnx_model);

}  // namespace detrq::pipeline
