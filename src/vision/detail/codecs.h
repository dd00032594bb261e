// The per-format decoders behind decode_image (private to the vision module).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "detrq/vision/rgb_image.h"

namespace detrq::vision::detail {

// Largest picture detrq decodes, as Pillow's decompression-bomb error threshold (2 * 89478485 pixels).
inline constexpr int64_t kMaxImagePixels = 178956970;

RgbImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name);
RgbImage decode_png(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace detrq::vision::detail
