// libFuzzer target for the hub-server's tokens file (detail::parse_tokens): any bytes parse or throw
// detrq::Error; every token parsed is non-empty and free of whitespace and of the comment sign.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "detrq/core/error.h"
#include "hub/hub_tokens.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& entry : detrq::hub::detail::parse_tokens(text, "fuzz-tokens.txt")) {
      const std::string& token = entry.first;
      if (token.empty() || token.find_first_of(" \t\n\v\f\r#") != std::string::npos) std::abort();
    }
  } catch (const detrq::Error&) {
  }
  return 0;
}
