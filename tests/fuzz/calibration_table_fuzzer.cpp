// libFuzzer target for the calibration.json reader (quant::parse_calibration_table): any bytes parse or throw
// detrq::Error; what parses writes back (to_json) to text that parses to the same tensors and scales, and
// turns into a TensorRT cache (to_cache) without crashing.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "detrq/core/error.h"
#include "detrq/quant/calibration_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  detrq::quant::CalibrationTable table;
  try {
    table = detrq::quant::parse_calibration_table(text, "fuzz/calibration.json");
  } catch (const detrq::Error&) {
    return 0;
  }
  try {
    (void)table.to_cache();
  } catch (const detrq::Error&) {
  }
  const detrq::quant::CalibrationTable again = detrq::quant::parse_calibration_table(table.to_json(), "roundtrip.json");
  if (again.tensors.size() != table.tensors.size() || again.method != table.method) std::abort();
  for (const auto& [name, t] : table.tensors) {
    const auto it = again.tensors.find(name);
    if (it == again.tensors.end() || it->second.quantized != t.quantized ||
        std::bit_cast<uint32_t>(it->second.scale) != std::bit_cast<uint32_t>(t.scale)) {
      std::abort();
    }
  }
  return 0;
}
