// CalibrationCache: TensorRT's INT8 calibration cache (text; first line `TRT-<version>-<algorithm>`,
// then `<tensor name>: <8 hex digits>`, the big-endian bits of the float32 scale = amax / 127).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace detrq::quant {

struct CalibrationCache {
  static constexpr const char* kDefaultVersion = "8601";  // TensorRT 8.6.1, the last to use caches widely
  std::string version = kDefaultVersion;       // digits, as TensorRT writes its own version
  std::string algorithm = "EntropyCalibration2";  // or "MinMaxCalibration", "EntropyCalibration", ...
  std::map<std::string, float> scales;          // tensor name -> scale

  // The text of the file, names sorted; scales print as exact bit patterns.
  std::string to_text() const;
};

// The TensorRT algorithm name a detrq calibration method is loaded as ("minmax" -> MinMaxCalibration;
// entropy, percentile and mse -> EntropyCalibration2, the calibrator trtexec --calib uses).
std::string cache_algorithm_for(const std::string& method);

// Parses cache text. Errors name `source` and the line: missing or malformed header, a line without
// "name: hex", bad hex, a non-finite or negative scale, a repeated name.
CalibrationCache parse_calibration_cache(std::string_view text, const std::string& source);
CalibrationCache read_calibration_cache(const std::filesystem::path& path);
void write_calibration_cache(const CalibrationCache& cache, const std::filesystem::path& path);

}  // namespace detrq::quant
