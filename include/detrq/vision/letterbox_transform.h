// LetterboxTransform: the exact preprocessing RF-DETR sees at inference and calibration: aspect-preserving
// antialiased bilinear resize into a square gray (114) canvas, ImageNet normalization, CHW float32.
#pragma once

#include <array>
#include <cstdint>

#include "detrq/core/tensor.h"
#include "detrq/vision/rgb_image.h"

namespace detrq::vision {

// Where the resized picture sits inside the canvas. Post-processing maps a box back to the source
// image with x_src = (x_canvas - offset_x) / scale, y_src = (y_canvas - offset_y) / scale.
struct LetterboxGeometry {
  float scale = 1.0f;    // min(size / w, size / h) in float32
  int resized_width = 0;   // trunc(w * scale), float32 product
  int resized_height = 0;  // trunc(h * scale)
  int offset_x = 0;        // (size - resized_width) / 2, integer division
  int offset_y = 0;
};

struct LetterboxResult {
  core::Tensor chw;  // float32 [1, 3, size, size]: (v / 255 - mean) / std per channel
  float scale = 1.0f;
  int offset_x = 0;
  int offset_y = 0;
};

class LetterboxTransform {
 public:
  static constexpr uint8_t kPadValue = 114;
  static constexpr std::array<float, 3> kMean{0.485f, 0.456f, 0.406f};
  static constexpr std::array<float, 3> kStd{0.229f, 0.224f, 0.225f};

  explicit LetterboxTransform(int size = 512);
  int size() const noexcept { return size_; }

  // Geometry for a w x h source; throws kInvalidInput for an empty image.
  LetterboxGeometry geometry(int width, int height) const;

  // The full transform: resize, pad, normalize into a new [1, 3, size, size] float32 tensor.
  LetterboxResult apply(const RgbImage& image) const;

  // Same, into caller-owned memory of 3 * size * size floats (a memory arena, a batch slot).
  LetterboxGeometry apply_into(const RgbImage& image, float* chw) const;

  // The padded, resized 8-bit canvas before normalization (size x size RGB), as Pillow would produce it
  // with Image.resize((w', h'), BILINEAR) pasted onto a gray canvas. For drawing and golden tests.
  RgbImage letterbox_rgb(const RgbImage& image, LetterboxGeometry* geometry = nullptr) const;

 private:
  int size_;
  std::array<std::array<float, 256>, 3> normalized_;  // (v / 255 - mean[c]) / std[c] for every byte v
};

// Resizes with Pillow's separable bilinear convolution (support widened by the downscale factor,
// 22-bit fixed-point coefficients, horizontal pass then vertical), bit-exact with Image.resize(BILINEAR).
RgbImage resize_bilinear_antialiased(const RgbImage& image, int width, int height);

}  // namespace detrq::vision
