// Calibrators: from a tensor's statistics to the amax (the |x| that maps to 127) of symmetric int8.
#pragma once

#include <string>

#include "detrq/quant/abs_histogram.h"
#include "detrq/quant/tensor_statistics.h"

namespace detrq::quant {

enum class CalibrationMethod { kEntropy, kMinMax, kPercentile, kMse };

const char* method_name(CalibrationMethod method) noexcept;  // "entropy", "minmax", ...
// Parses a method name; throws a usage error listing the valid names.
CalibrationMethod parse_method(const std::string& name);

struct CalibratorOptions {
  double percentile = 99.99;  // for kPercentile, in (0, 100]
};

// TensorRT's EntropyCalibration2 threshold: for every candidate threshold of i >= 128 bins, the
// reference distribution (bins below i, with everything above folded into the last one) is compared
// with its 128-level quantization (each level spreading its mass evenly over its non-empty bins) by
// KL divergence; the smallest divergence wins (the largest i among equals) and amax is i bin widths.
// As in NVIDIA's reference, bin 0 (exact zeros, ReLU's mass) is first set equal to bin 1.
double entropy_amax(const AbsHistogram& histogram);
// The upper edge of the bin where the cumulative count reaches `percentile` percent.
double percentile_amax(const AbsHistogram& histogram, double percentile);
// The bin edge (from bin 128 up) minimizing the mean squared error of fake-quantizing bin centres.
double mse_amax(const AbsHistogram& histogram);

// amax by the chosen method; 0 when the tensor has no finite non-zero value.
double compute_amax(const TensorStatistics& stats, CalibrationMethod method, const CalibratorOptions& options = {});

}  // namespace detrq::quant
