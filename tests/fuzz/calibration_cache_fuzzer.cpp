// libFuzzer target for the TensorRT calibration cache reader: any bytes either parse or throw
// detrq::Error, and whatever parses writes back to text that parses to the same cache.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "detrq/core/error.h"
#include "detrq/quant/calibration_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  detrq::quant::CalibrationCache cache;
  try {
    cache = detrq::quant::parse_calibration_cache(text, "fuzz.cache");
  } catch (const detrq::Error&) {
    return 0;
  }
  // Names that cannot be written (empty) are refused by the writer, not by to_text.
  auto again = detrq::quant::parse_calibration_cache(cache.to_text(), "roundtrip.cache");
  if (again.version != cache.version || again.algorithm != cache.algorithm || again.scales.size() != cache.scales.size()) {
    std::abort();
  }
  for (const auto& [name, scale] : cache.scales) {
    auto it = again.scales.find(name);
    if (it == again.scales.end() || std::bit_cast<uint32_t>(it->second) != std::bit_cast<uint32_t>(scale)) std::abort();
  }
  return 0;
}
