// Drawing detections: the PNG decodes (with cairo, independently of the drawing code), the box outline
// has its category's color, and pixels away from any box are the image's own.
#include "detrq/vision/draw.h"

#include <cairo.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::vision {
namespace {

struct Png {
  int width = 0, height = 0;
  std::vector<uint32_t> pixels;  // 0xRRGGBB
  uint32_t at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * width + x] & 0xFFFFFF; }
};

Png from_surface(cairo_surface_t* s) {
  EXPECT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  Png png;
  png.width = cairo_image_surface_get_width(s);
  png.height = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  for (int y = 0; y < png.height; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<std::ptrdiff_t>(y) * stride);
    png.pixels.insert(png.pixels.end(), row, row + png.width);
  }
  cairo_surface_destroy(s);
  return png;
}

Png decode(const std::filesystem::path& path) { return from_surface(cairo_image_surface_create_from_png(path.c_str())); }

// PNG bytes in memory, read by cairo's stream reader.
Png decode_bytes(const std::string& bytes) {
  struct Reader {
    const std::string* bytes;
    std::size_t at = 0;
  } reader{&bytes};
  auto read = [](void* closure, unsigned char* out, unsigned int length) {
    auto* r = static_cast<Reader*>(closure);
    if (r->bytes->size() - r->at < length) return CAIRO_STATUS_READ_ERROR;
    std::memcpy(out, r->bytes->data() + r->at, length);
    r->at += length;
    return CAIRO_STATUS_SUCCESS;
  };
  return from_surface(cairo_image_surface_create_from_png_stream(read, &reader));
}

core::Tensor gradient(int h, int w, int c) {
  core::Tensor t = core::Tensor::empty(core::DType::kUInt8, {h, w, c});
  uint8_t* p = t.data<uint8_t>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) p[(y * w + x) * c + k] = static_cast<uint8_t>((x + 2 * y + 50 * k) % 256);
  return t;
}

TEST(DrawDetections, BoxesInCategoryColorOverUntouchedImage) {
  const auto dir = std::filesystem::temp_directory_path() / ("detrq_draw_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  core::Tensor image = gradient(120, 160, 3);
  Detection d;
  d.category_id = 2;
  d.label = "square";
  d.score = 0.87F;
  d.x0 = 40;
  d.y0 = 50;
  d.x1 = 120;
  d.y1 = 100;
  DrawOptions opt;
  opt.line_width = 4;
  draw_detections_png(image, {d}, dir / "out.png", opt);
  Png png = decode(dir / "out.png");
  ASSERT_EQ(png.width, 160);
  ASSERT_EQ(png.height, 120);
  EXPECT_EQ(png.at(40, 75), category_color(2));   // left edge, midway down
  EXPECT_EQ(png.at(120, 75), category_color(2));  // right edge
  EXPECT_EQ(png.at(80, 100), category_color(2));  // bottom edge
  const uint8_t* src = image.data<uint8_t>();
  for (auto [x, y] : {std::pair{80, 75}, std::pair{5, 115}, std::pair{150, 110}}) {
    const uint8_t* p = src + (y * 160 + x) * 3;
    EXPECT_EQ(png.at(x, y), (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]) << x << "," << y;
  }
  std::filesystem::remove_all(dir);
}

// With no detections the PNG is the image itself: gray repeated in R, G and B; RGBA without its alpha.
TEST(DrawDetections, GrayAndRgbaImagesAndNoDetections) {
  for (int channels : {1, 4}) {
    const core::Tensor image = gradient(10, 12, channels);
    const Png png = decode_bytes(render_detections_png(image, {}));
    ASSERT_EQ(png.width, 12) << channels;
    ASSERT_EQ(png.height, 10) << channels;
    const uint8_t* src = image.data<uint8_t>();
    for (int y = 0; y < 10; ++y) {
      for (int x = 0; x < 12; ++x) {
        const uint8_t* p = src + (y * 12 + x) * channels;
        const uint32_t r = p[0], g = channels == 1 ? p[0] : p[1], b = channels == 1 ? p[0] : p[2];
        ASSERT_EQ(png.at(x, y), (r << 16) | (g << 8) | b) << channels << " channels, pixel " << x << "," << y;
      }
    }
  }
}

TEST(DrawDetections, RefusesWhatIsNotAnImage) {
  EXPECT_THROW(render_detections_png(core::Tensor::zeros(core::DType::kFloat32, {4, 4, 3}), {}), Error);
  EXPECT_THROW(render_detections_png(core::Tensor::zeros(core::DType::kUInt8, {4, 4, 2}), {}), Error);
  EXPECT_THROW(render_detections_png(core::Tensor::zeros(core::DType::kUInt8, {4, 4}), {}), Error);
}

// The palette, written out: a category's color is a fixed value, not whatever the drawing code picks today.
TEST(DrawDetections, PaletteIsStablePerCategory) {
  EXPECT_EQ(category_color(0), 0xE6194BU);
  EXPECT_EQ(category_color(3), 0xF58231U);
  EXPECT_EQ(category_color(18), 0xA9A9A9U);
  EXPECT_EQ(category_color(19), category_color(0));   // 19 colors, then it wraps
  EXPECT_EQ(category_color(-1), category_color(18));  // never indexes outside the palette
  std::set<uint32_t> distinct;
  for (int i = 0; i < 19; ++i) distinct.insert(category_color(i));
  EXPECT_EQ(distinct.size(), 19U);
}

}  // namespace
}  // namespace detrq::vision
