// calibrate(): the whole calibration of an FP32 ONNX model on CPU: statistics from detrq's runtime
// on calibration tensors, thresholds, the TensorRT cache, calibration.json, the Q/DQ model, the
// report, and INT8 against FP32 on held-out tensors. `detrq calibrate` is a thin layer over it.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"
#include "detrq/quant/calibration_report.h"
#include "detrq/quant/calibration_table.h"
#include "detrq/runtime/cpu_target.h"
#include "detrq/quant/calibrator.h"
#include "detrq/quant/mac_count.h"
#include "detrq/quant/policy_search.h"
#include "detrq/quant/precision_policy.h"
#include "detrq/quant/qdq_insertion.h"

namespace detrq::quant {

// Where calibration inputs come from: named items loaded one at a time in the model input's shape
// (calibration tensor files here; decoded and letterboxed images from the CLI, which sits above vision).
struct CalibrationSource {
  std::string description;          // "folder X" for messages
  std::vector<std::string> names;   // one per item, in order
  std::function<core::Tensor(std::size_t index, const core::Shape& shape)> load;
};

struct CalibrateOptions {
  std::filesystem::path onnx;
  CalibrationSource source;
  int count = 0;                      // calibration tensors to use; 0: all but the held-out ones
  int eval_count = 8;                 // held-out tensors for INT8 against FP32 (0: skip the check)
  CalibrationMethod method = CalibrationMethod::kPercentile;
  CalibratorOptions calibrator;
  std::filesystem::path cache_path;   // empty: not written
  std::string cache_version = CalibrationCache::kDefaultVersion;
  std::filesystem::path qdq_out;
  std::filesystem::path table_path;
  std::filesystem::path report_path;
  PrecisionPolicy policy;
  std::optional<double> accuracy_budget_db;  // keep the most sensitive layers float until every output reaches it
  // Label-free AP points the policy may lose on the held-out images (policy_search.h): measured first,
  // searched (groups of layers returned to float) only when over budget.
  double ap_budget = 0.1;
  // SmoothQuant migration strength (smoothing.h) for LayerNorms feeding MatMuls; 0: none.
  double smooth_alpha = 0.5;
  bool all_tensors = false;  // observe every float tensor (a complete TensorRT cache) instead of tensors_to_calibrate()
  int threads = 0;
  runtime::CpuTarget target = runtime::CpuTarget::host();  // what the kernels may use
};

struct CalibrateResult {
  CalibrationTable table;
  QdqSummary qdq;
  FidelityReport fidelity;
  int calibration_images = 0;
  MacCount macs;                    // of the published Q/DQ model
  PolicySearch policy_search;       // the AP budget: the start's measure, and the search when it ran
  int smoothed_layernorms = 0;
  double statistics_seconds = 0.0;  // the FP32 runs with the observer (both passes with smoothing)
  std::size_t statistics_bytes = 0;  // memory of the statistics
};

// The calib_*.bin files of a folder, sorted by name; kInvalidInput naming the folder when none.
std::vector<std::filesystem::path> list_calibration_tensors(const std::filesystem::path& dir);
// Reads one raw float32 tensor of `shape`; a file of another size is an error naming it and both sizes.
core::Tensor read_calibration_tensor(const std::filesystem::path& path, const core::Shape& shape);

// The calib_*.bin files of a folder as a source.
CalibrationSource tensor_folder_source(const std::filesystem::path& dir);

CalibrateResult calibrate(const CalibrateOptions& options);

}  // namespace detrq::quant
