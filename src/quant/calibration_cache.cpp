// CalibrationCache: TensorRT calibration cache text, written and read back bit for bit.
#include "detrq/quant/calibration_cache.h"

#include <bit>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::quant {

std::string CalibrationCache::to_text() const {
  std::string out = "TRT-" + version + "-" + algorithm + "\n";
  for (const auto& [name, scale] : scales) {
    out += fmt::format("{}: {:08x}\n", name, std::bit_cast<uint32_t>(scale));
  }
  return out;
}

std::string cache_algorithm_for(const std::string& method) {
  return method == "minmax" ? "MinMaxCalibration" : "EntropyCalibration2";
}

CalibrationCache parse_calibration_cache(std::string_view text, const std::string& source) {
  CalibrationCache cache;
  cache.scales.clear();
  auto fail = [&](std::size_t line, const std::string& what) {
    throw_invalid(source + ":" + std::to_string(line), what,
                  "a TensorRT calibration cache starts with 'TRT-<version>-<algorithm>' and has one "
                  "'<tensor>: <8 hex digits>' per line");
  };
  std::size_t line_no = 0;
  std::size_t pos = 0;
  bool header_seen = false;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!header_seen) {
      // TRT-<digits>-<algorithm>
      if (line.substr(0, 4) != "TRT-") fail(line_no, "the first line is not a 'TRT-<version>-<algorithm>' header");
      std::string_view rest = line.substr(4);
      std::size_t dash = rest.find('-');
      if (dash == std::string_view::npos || dash == 0) fail(line_no, "the header has no version number");
      std::string_view version = rest.substr(0, dash);
      for (char ch : version) {
        if (ch < '0' || ch > '9') fail(line_no, "the header's version '" + std::string(version) + "' is not a number");
      }
      std::string_view algorithm = rest.substr(dash + 1);
      if (algorithm.empty()) fail(line_no, "the header names no algorithm");
      for (char ch : algorithm) {
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) {
          fail(line_no, "the header's algorithm name has an unexpected character");
        }
      }
      cache.version = std::string(version);
      cache.algorithm = std::string(algorithm);
      header_seen = true;
      continue;
    }
    if (line.empty()) continue;  // a trailing blank line is harmless
    // Tensor names may themselves contain ": ", so the value is after the last one.
    std::size_t sep = line.rfind(": ");
    if (sep == std::string_view::npos || sep == 0) fail(line_no, "expected '<tensor name>: <hex scale>'");
    std::string_view name = line.substr(0, sep);
    std::string_view hex = line.substr(sep + 2);
    if (hex.empty() || hex.size() > 8) fail(line_no, "the scale is not 1 to 8 hex digits");
    uint32_t bits = 0;
    for (char ch : hex) {
      int digit = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
      if (digit < 0) fail(line_no, "the scale '" + std::string(hex) + "' is not hexadecimal");
      bits = (bits << 4) | static_cast<uint32_t>(digit);
    }
    const float scale = std::bit_cast<float>(bits);
    if (!std::isfinite(scale) || scale < 0) {
      fail(line_no, "the scale of '" + std::string(name) + "' is " + fmt::format("{}", scale) + ", not a finite value >= 0");
    }
    if (!cache.scales.emplace(std::string(name), scale).second) {
      fail(line_no, "tensor '" + std::string(name) + "' appears twice");
    }
  }
  if (!header_seen) fail(1, "the file is empty");
  return cache;
}

CalibrationCache read_calibration_cache(const std::filesystem::path& path) {
  return parse_calibration_cache(core::read_file(path), path.string());
}

void write_calibration_cache(const CalibrationCache& cache, const std::filesystem::path& path) {
  for (const auto& [name, scale] : cache.scales) {
    // A newline would split the line; TensorRT would misread the file.
    if (name.empty() || name.find('\n') != std::string::npos || name.find('\r') != std::string::npos) {
      throw_invalid(path.string(), "tensor name '" + name + "' cannot be written to a calibration cache",
                    "rename the tensor in the model");
    }
    if (!std::isfinite(scale) || scale < 0) {
      throw_invalid(path.string(), "scale of '" + name + "' is not a finite value >= 0", "a bug in calibration");
    }
  }
  core::write_file_atomic(path, cache.to_text());
}

}  // namespace detrq::quant
