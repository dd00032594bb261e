// CalibrationTable: the result of calibration for every observed tensor (amax, scale, why a tensor is
// not quantized, sensitivity), written as calibration.json and turned into a TensorRT cache.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "detrq/onnx/model.h"
#include "detrq/quant/calibration_cache.h"
#include "detrq/quant/calibrator.h"
#include "detrq/quant/policy_search.h"
#include "detrq/quant/tensor_statistics.h"

namespace detrq::quant {

struct TensorCalibration {
  double amax = 0.0;
  float scale = 0.0F;  // amax / 127 as float32, the value a Q/DQ node or cache holds
  double min = 0.0;    // finite range seen
  double max = 0.0;
  uint64_t count = 0;
  uint64_t nonfinite = 0;
  bool quantized = true;  // has a usable scale (in the TensorRT cache); calibration.json's "calibrated"
  std::string reason;  // why not, when !quantized
  // The published Q/DQ model quantizes it (a QuantizeLinear reads it); calibration.json's "quantized".
  bool in_qdq_model = false;
  std::optional<double> sensitivity_db;  // SQNR of the model outputs with only this tensor quantized; unset: not measured
};

// One Conv/MatMul/Gemm of the published Q/DQ model: its work and whether it runs in INT8.
struct LayerPrecision {
  std::string node;
  std::string op_type;
  int64_t macs = 0;
  bool int8 = false;
  std::string reason;  // why it stays float
};

// One LayerNorm whose outlier channels were moved into the weights after it (smoothing.h).
struct SmoothingRecord {
  std::string layernorm;
  double max_factor = 1.0;
  double min_factor = 1.0;
};

struct CalibrationTable {
  std::string model_fingerprint;  // model_fingerprint() of the FP32 model
  std::string method = "entropy";
  double percentile = 0.0;        // set for the percentile method
  int64_t images = 0;
  std::map<std::string, TensorCalibration> tensors;
  // What the Q/DQ model quantizes, by work (written to calibration.json; not read back).
  std::vector<LayerPrecision> layers;
  double smoothing_alpha = 0.0;  // 0: no smoothing
  std::vector<SmoothingRecord> smoothing;
  // The AP budget and, when it ran, the sensitivity search (written as "ap_budget"; not read back).
  std::optional<PolicySearch> policy_search;

  int64_t macs_total() const;
  int64_t macs_int8() const;
  double int8_mac_share() const;  // 0 when nothing was counted

  std::string to_json() const;
  // The cache TensorRT loads: every quantized tensor's scale.
  CalibrationCache to_cache(const std::string& version = CalibrationCache::kDefaultVersion) const;
};

// Above this fraction of non-finite values a tensor is left in float (its range says little).
inline constexpr double kMaxNonFiniteFraction = 0.5;

// Turns statistics into a table with the chosen calibrator.
CalibrationTable build_calibration_table(const std::map<std::string, TensorStatistics>& statistics,
                                         CalibrationMethod method, const CalibratorOptions& options = {});

// A short hash of what identifies a model's graph (inputs, node types, outputs), so a table made
// for one model is refused for another.
std::string model_fingerprint(const onnx::Model& model);

CalibrationTable parse_calibration_table(const std::string& json_text, const std::string& source);
CalibrationTable read_calibration_table(const std::filesystem::path& path);
void write_calibration_table(const CalibrationTable& table, const std::filesystem::path& path);
// Throws kInvalidInput naming `source` when the table was made for another model.
void check_table_matches(const CalibrationTable& table, const onnx::Model& model, const std::string& source);

}  // namespace detrq::quant
