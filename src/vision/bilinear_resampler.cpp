// Pillow-exact antialiased bilinear resampling (the convolution behind Image.resize(size, BILINEAR)).
// Double-precision weights rounded to 22-bit integers, integer accumulation with a half-unit bias, and
// an 8-bit intermediate between the passes: each step mirrors Pillow so results match bit for bit.
#include "vision/detail/bilinear_resampler.h"

#include <cmath>
#include <cstring>

#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif

#include "detrq/core/error.h"
#include "detrq/vision/letterbox_transform.h"

namespace detrq::vision {
namespace detail {
namespace {

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

inline uint8_t clip8(int32_t acc) {
  acc >>= ResampleCoefficients::kPrecisionBits;
  return static_cast<uint8_t>(acc < 0 ? 0 : (acc > 255 ? 255 : acc));
}

}  // namespace

ResampleCoefficients bilinear_coefficients(int in_size, int out_size) {
  DETRQ_ASSERT(in_size > 0 && out_size > 0, "resample sizes must be positive");
  ResampleCoefficients c;
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filter_scale = scale < 1.0 ? 1.0 : scale;  // widen the support only when downscaling
  const double support = 1.0 * filter_scale;
  c.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<std::size_t>(out_size) * c.taps, 0);
  std::vector<double> k(c.taps);
  const double inv = 1.0 / filter_scale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = bilinear_filter((x + xmin - center + 0.5) * inv);
      total += k[x];
    }
    int32_t* w = &c.weights[static_cast<std::size_t>(xx) * c.taps];
    for (int x = 0; x < xmax; ++x) {
      const double v = total != 0.0 ? k[x] / total : k[x];
      const double fixed = v * (1 << ResampleCoefficients::kPrecisionBits);
      w[x] = static_cast<int32_t>(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

void resample_rows_horizontal(const uint8_t* src, std::size_t src_stride, int rows, const ResampleCoefficients& cx,
                              uint8_t* dst, std::size_t dst_stride) {
  const int out_width = static_cast<int>(cx.first.size());
  constexpr int32_t kHalf = 1 << (ResampleCoefficients::kPrecisionBits - 1);
#if defined(__SSE4_1__)
  // The vector path loads 4 bytes per input pixel (R, G, B and the next pixel's R, ignored), so it
  // stops before the output pixels that read the row's last input pixel.
  const int in_width = static_cast<int>(src_stride / 3);
  int vector_width = out_width;
  while (vector_width > 0 && cx.first[vector_width - 1] + cx.count[vector_width - 1] >= in_width) --vector_width;
#else
  const int vector_width = 0;
#endif
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src + static_cast<std::size_t>(y) * src_stride;
    uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
#if defined(__SSE4_1__)
    // One pixel's three channels in three int32 lanes: the same integer arithmetic as the scalar loop.
    for (int x = 0; x < vector_width; ++x) {
      const int32_t* w = &cx.weights[static_cast<std::size_t>(x) * cx.taps];
      const uint8_t* p = in + static_cast<std::size_t>(cx.first[x]) * 3;
      __m128i acc = _mm_set1_epi32(kHalf);
      for (int t = 0, n = cx.count[x]; t < n; ++t) {
        int32_t bytes;
        std::memcpy(&bytes, p + 3 * t, 4);
        const __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(bytes));
        acc = _mm_add_epi32(acc, _mm_mullo_epi32(px, _mm_set1_epi32(w[t])));
      }
      acc = _mm_srai_epi32(acc, ResampleCoefficients::kPrecisionBits);
      const __m128i packed = _mm_packus_epi16(_mm_packus_epi32(acc, acc), acc);  // clamps to 0..255 as clip8
      const uint32_t rgb = static_cast<uint32_t>(_mm_cvtsi128_si32(packed));
      std::memcpy(out + 3 * x, &rgb, 3);
    }
#endif
    for (int x = vector_width; x < out_width; ++x) {
      const int32_t* w = &cx.weights[static_cast<std::size_t>(x) * cx.taps];
      const uint8_t* p = in + static_cast<std::size_t>(cx.first[x]) * 3;
      int32_t r = kHalf, g = kHalf, b = kHalf;
      for (int t = 0, n = cx.count[x]; t < n; ++t) {
        r += p[3 * t + 0] * w[t];
        g += p[3 * t + 1] * w[t];
        b += p[3 * t + 2] * w[t];
      }
      out[3 * x + 0] = clip8(r);
      out[3 * x + 1] = clip8(g);
      out[3 * x + 2] = clip8(b);
    }
  }
}

void resample_row_vertical(const uint8_t* src, std::size_t src_stride, int row_base, std::size_t width3,
                           const ResampleCoefficients& cy, int y, uint8_t* dst) {
  constexpr int32_t kHalf = 1 << (ResampleCoefficients::kPrecisionBits - 1);
  const int32_t* w = &cy.weights[static_cast<std::size_t>(y) * cy.taps];
  const int first = cy.first[y] - row_base;
  const int n = cy.count[y];
  // Blocks of 256 accumulators stay in registers/L1 while every tap row streams through them.
  constexpr std::size_t kBlock = 256;
  int32_t acc[kBlock];
  for (std::size_t x0 = 0; x0 < width3; x0 += kBlock) {
    const std::size_t len = std::min(kBlock, width3 - x0);
    for (std::size_t i = 0; i < len; ++i) acc[i] = kHalf;
    for (int t = 0; t < n; ++t) {
      const uint8_t* row = src + static_cast<std::size_t>(first + t) * src_stride + x0;
      const int32_t wt = w[t];
      for (std::size_t i = 0; i < len; ++i) acc[i] += row[i] * wt;
    }
    for (std::size_t i = 0; i < len; ++i) dst[x0 + i] = clip8(acc[i]);
  }
}

}  // namespace detail

RgbImage resize_bilinear_antialiased(const RgbImage& image, int width, int height) {
  if (image.empty()) throw_invalid("image", "cannot resize an empty image");
  if (width <= 0 || height <= 0) throw_invalid("resize", "target size must be positive");
  RgbImage out(width, height);
  const bool horizontal = width != image.width;
  const bool vertical = height != image.height;
  if (!horizontal && !vertical) return image;
  if (!vertical) {
    detail::resample_rows_horizontal(image.pixels.data(), image.row_bytes(), image.height,
                                     detail::bilinear_coefficients(image.width, width), out.pixels.data(),
                                     out.row_bytes());
    return out;
  }
  const auto cy = detail::bilinear_coefficients(image.height, height);
  // Only the input rows some output row reads need the horizontal pass.
  const int row_first = cy.first.front();
  const int row_last = cy.first.back() + cy.count.back();
  std::vector<uint8_t> tmp;
  const uint8_t* rows = image.row(row_first);
  std::size_t stride = image.row_bytes();
  if (horizontal) {
    stride = out.row_bytes();
    tmp.resize(stride * static_cast<std::size_t>(row_last - row_first));
    detail::resample_rows_horizontal(rows, image.row_bytes(), row_last - row_first,
                                     detail::bilinear_coefficients(image.width, width), tmp.data(), stride);
    rows = tmp.data();
  }
  for (int y = 0; y < height; ++y) {
    detail::resample_row_vertical(rows, stride, row_first, out.row_bytes(), cy, y, out.row(y));
  }
  return out;
}

}  // namespace detrq::vision
