// Drawing detections: the PNG decodes (with cairo, independently of the drawing code), the box outline
// has its category's color, and pixels away from any box are the image's own.
#include "detrq/vision/draw.h"

#include <cairo.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::vision {
namespace {

struct Png {
  int width = 0, height = 0;
  std::vector<uint32_t> pixels;  // 0xRRGGBB
  uint32_t at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * width + x] & 0xFFFFFF; }
};

Png decode(const std::filesystem::path& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
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

TEST(DrawDetections, GrayAndRgbaImagesAndNoDetections) {
  std::string gray = render_detections_png(gradient(10, 12, 1), {});
  std::string rgba = render_detections_png(gradient(10, 12, 4), {});
  ASSERT_GT(gray.size(), 8U);
  EXPECT_EQ(gray.substr(1, 3), "PNG");
  EXPECT_EQ(rgba.substr(1, 3), "PNG");
}

TEST(DrawDetections, RefusesWhatIsNotAnImage) {
  EXPECT_THROW(render_detections_png(core::Tensor::zeros(core::DType::kFloat32, {4, 4, 3}), {}), Error);
  EXPECT_THROW(render_detections_png(core::Tensor::zeros(core::DType::kUInt8, {4, 4, 2}), {}), Error);
  EXPECT_THROW(render_detections_png(core::Tensor::zeros(core::DType::kUInt8, {4, 4}), {}), Error);
}

TEST(DrawDetections, PaletteIsStablePerCategory) {
  EXPECT_EQ(category_color(3), category_color(3));
  EXPECT_NE(category_color(1), category_color(2));
  EXPECT_EQ(category_color(-1), category_color(18));  // never indexes outside the palette
}

}  // namespace
}  // namespace detrq::vision
