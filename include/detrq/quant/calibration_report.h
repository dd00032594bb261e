// CalibrationReport: the self-contained report.html of a calibration (summary, accuracy, the
// precision decisions, and inline SVG histograms with the chosen thresholds).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "detrq/quant/calibration_table.h"
#include "detrq/quant/precision_policy.h"
#include "detrq/quant/tensor_statistics.h"

namespace detrq::quant {

struct OutputFidelity {
  std::string name;
  double sqnr_db = 0.0;  // 10 log10(signal / noise) of INT8 against FP32 over finite values
};

struct FidelityReport {
  int images = 0;  // held-out images compared
  std::vector<OutputFidelity> outputs;
  double top_detection_agreement = -1.0;  // fraction in [0, 1]; < 0 when not measured
  double label_free_ap = -1.0;  // INT8 against FP32 detections, COCO AP in points (label_free_ap.h); < 0: not measured
  double label_free_ap_standard_error = 0.0;  // its jackknife standard error over the images, in points
};

struct CalibrationReportInput {
  std::string model_name;
  const CalibrationTable* table = nullptr;
  const std::map<std::string, TensorStatistics>* statistics = nullptr;  // may be null (no plots)
  std::vector<NodeDecision> decisions;
  FidelityReport fidelity;
  int max_plots = 12;
};

// Renders the report (HTML with inline SVG, no external resources).
std::string render_calibration_report(const CalibrationReportInput& input);
void write_calibration_report(const CalibrationReportInput& input, const std::filesystem::path& path);
// One histogram as an SVG element: log-count bars of |x| with the amax and max lines.
std::string histogram_svg(const TensorStatistics& stats, double amax);

}  // namespace detrq::quant
