// LetterboxTransform: resize (Pillow-exact bilinear), pad with 114 and normalize in one pass over the
// output; the vertical resampling pass writes straight into the three float planes through a lookup table.
#include "detrq/vision/letterbox_transform.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "detrq/core/error.h"
#include "vision/detail/bilinear_resampler.h"

namespace detrq::vision {
namespace {

// Calls emit(y, row) for each of the geometry's resized rows (y in [0, resized_height)), each row
// being resized_width RGB pixels.
template <typename Emit>
void for_each_resized_row(const RgbImage& image, const LetterboxGeometry& g, Emit&& emit) {
  const bool horizontal = g.resized_width != image.width;
  const bool vertical = g.resized_height != image.height;
  const std::size_t out_row = static_cast<std::size_t>(g.resized_width) * 3;
  if (!vertical) {
    if (!horizontal) {
      for (int y = 0; y < image.height; ++y) emit(y, image.row(y));
      return;
    }
    const auto cx = detail::bilinear_coefficients(image.width, g.resized_width);
    std::vector<uint8_t> row(out_row);
    for (int y = 0; y < image.height; ++y) {
      detail::resample_rows_horizontal(image.row(y), image.row_bytes(), 1, cx, row.data(), out_row);
      emit(y, row.data());
    }
    return;
  }
  const auto cy = detail::bilinear_coefficients(image.height, g.resized_height);
  const int row_first = cy.first.front();
  const int row_last = cy.first.back() + cy.count.back();
  std::vector<uint8_t> tmp;
  const uint8_t* rows = image.row(row_first);
  std::size_t stride = image.row_bytes();
  if (horizontal) {
    stride = out_row;
    tmp.resize(stride * static_cast<std::size_t>(row_last - row_first));
    detail::resample_rows_horizontal(rows, image.row_bytes(), row_last - row_first,
                                     detail::bilinear_coefficients(image.width, g.resized_width), tmp.data(),
                                     stride);
    rows = tmp.data();
  }
  std::vector<uint8_t> row(out_row);
  for (int y = 0; y < g.resized_height; ++y) {
    detail::resample_row_vertical(rows, stride, row_first, out_row, cy, y, row.data());
    emit(y, row.data());
  }
}

}  // namespace

LetterboxTransform::LetterboxTransform(int size) : size_(size) {
  if (size <= 0) throw_invalid("LetterboxTransform", "size must be positive, got " + std::to_string(size));
  // float32 arithmetic in the reference's order: (v / 255 - mean) / std.
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      normalized_[c][v] = (static_cast<float>(v) / 255.0f - kMean[c]) / kStd[c];
    }
  }
}

LetterboxGeometry LetterboxTransform::geometry(int width, int height) const {
  if (width <= 0 || height <= 0) {
    throw_invalid("image", "cannot letterbox an empty image (" + std::to_string(width) + "x" +
                               std::to_string(height) + ")");
  }
  LetterboxGeometry g;
  const float size = static_cast<float>(size_);
  g.scale = std::min(size / static_cast<float>(width), size / static_cast<float>(height));
  // trunc of the float32 product; at least one pixel, so that a 1x100000 strip stays drawable.
  g.resized_width = std::clamp(static_cast<int>(static_cast<float>(width) * g.scale), 1, size_);
  g.resized_height = std::clamp(static_cast<int>(static_cast<float>(height) * g.scale), 1, size_);
  g.offset_x = (size_ - g.resized_width) / 2;
  g.offset_y = (size_ - g.resized_height) / 2;
  return g;
}

LetterboxGeometry LetterboxTransform::apply_into(const RgbImage& image, float* chw) const {
  const LetterboxGeometry g = geometry(image.width, image.height);
  const std::size_t plane = static_cast<std::size_t>(size_) * size_;
  float* planes[3] = {chw, chw + plane, chw + 2 * plane};
  const float* lut[3] = {normalized_[0].data(), normalized_[1].data(), normalized_[2].data()};
  // Padding: whole rows above and below, then the left and right margins of the picture rows.
  for (int c = 0; c < 3; ++c) {
    const float pad = lut[c][kPadValue];
    float* p = planes[c];
    std::fill(p, p + static_cast<std::size_t>(g.offset_y) * size_, pad);
    std::fill(p + static_cast<std::size_t>(g.offset_y + g.resized_height) * size_, p + plane, pad);
    for (int y = g.offset_y; y < g.offset_y + g.resized_height; ++y) {
      float* r = p + static_cast<std::size_t>(y) * size_;
      std::fill(r, r + g.offset_x, pad);
      std::fill(r + g.offset_x + g.resized_width, r + size_, pad);
    }
  }
  const int w = g.resized_width;
  for_each_resized_row(image, g, [&](int y, const uint8_t* rgb) {
    const std::size_t at = static_cast<std::size_t>(g.offset_y + y) * size_ + g.offset_x;
    float* r = planes[0] + at;
    float* gr = planes[1] + at;
    float* b = planes[2] + at;
    for (int x = 0; x < w; ++x) {
      r[x] = lut[0][rgb[3 * x + 0]];
      gr[x] = lut[1][rgb[3 * x + 1]];
      b[x] = lut[2][rgb[3 * x + 2]];
    }
  });
  return g;
}

LetterboxResult LetterboxTransform::apply(const RgbImage& image) const {
  LetterboxResult result;
  result.chw = core::Tensor::empty(core::DType::kFloat32, {1, 3, size_, size_});
  const LetterboxGeometry g = apply_into(image, result.chw.data<float>());
  result.scale = g.scale;
  result.offset_x = g.offset_x;
  result.offset_y = g.offset_y;
  return result;
}

RgbImage LetterboxTransform::letterbox_rgb(const RgbImage& image, LetterboxGeometry* geometry_out) const {
  const LetterboxGeometry g = geometry(image.width, image.height);
  RgbImage canvas(size_, size_);
  std::fill(canvas.pixels.begin(), canvas.pixels.end(), kPadValue);
  const std::size_t bytes = static_cast<std::size_t>(g.resized_width) * 3;
  for_each_resized_row(image, g, [&](int y, const uint8_t* rgb) {
    std::memcpy(canvas.row(g.offset_y + y) + static_cast<std::size_t>(g.offset_x) * 3, rgb, bytes);
  });
  if (geometry_out != nullptr) *geometry_out = g;
  return canvas;
}

}  // namespace detrq::vision
