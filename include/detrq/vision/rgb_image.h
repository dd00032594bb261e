// RgbImage: a decoded picture as interleaved 8-bit RGB rows, the one pixel format the vision module works in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace detrq::vision {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // height rows of width * 3 bytes (R, G, B), no padding

  RgbImage() = default;
  RgbImage(int w, int h) : width(w), height(h), pixels(static_cast<std::size_t>(w) * h * 3) {}

  std::size_t row_bytes() const noexcept { return static_cast<std::size_t>(width) * 3; }
  uint8_t* row(int y) noexcept { return pixels.data() + static_cast<std::size_t>(y) * row_bytes(); }
  const uint8_t* row(int y) const noexcept { return pixels.data() + static_cast<std::size_t>(y) * row_bytes(); }
  bool empty() const noexcept { return width == 0 || height == 0; }
};

}  // namespace detrq::vision
