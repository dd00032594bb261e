// The two passes of Pillow's antialiased bilinear resampling on 3-channel 8-bit rows, shared by
// resize_bilinear_antialiased and LetterboxTransform (which fuses the vertical pass with normalization).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace detrq::vision::detail {

// For each output index: the first input index, how many inputs it reads, and 22-bit fixed-point
// weights (taps per output, zero-padded), computed exactly as Pillow's precompute_coeffs.
struct ResampleCoefficients {
  static constexpr int kPrecisionBits = 22;  // 32 - 8 - 2, as Pillow
  int taps = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;  // out_size * taps
};

ResampleCoefficients bilinear_coefficients(int in_size, int out_size);

// Horizontal pass: `rows` rows of src (width given by the coefficients' inputs) into rows of
// out_width = first.size() pixels.
void resample_rows_horizontal(const uint8_t* src, std::size_t src_stride, int rows, const ResampleCoefficients& cx,
                              uint8_t* dst, std::size_t dst_stride);

// Vertical pass for one output row `y`: combines rows of src (row r at src + r * stride, r relative to
// `row_base`) into `width3` bytes of dst.
void resample_row_vertical(const uint8_t* src, std::size_t src_stride, int row_base, std::size_t width3,
                           const ResampleCoefficients& cy, int y, uint8_t* dst);

}  // namespace detrq::vision::detail
