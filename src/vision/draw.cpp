// Drawing detections with cairo (see draw.h): the image is copied into a cairo surface, boxes are stroked
// in the category's color, and each label sits on a filled tab above its box so it stays readable.
#include "detrq/vision/draw.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::vision {

namespace {

// Distinct, saturated colors that read well on photographs.
constexpr uint32_t kPalette[] = {0xE6194B, 0x3CB44B, 0x4363D8, 0xF58231, 0x911EB4, 0x42D4F4, 0xF032E6,
                                 0xBFEF45, 0xFABED4, 0x469990, 0xDCBEFF, 0x9A6324, 0xFFE119, 0x800000,
                                 0xAAFFC3, 0x808000, 0xFFD8B1, 0x000075, 0xA9A9A9};

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};

void set_color(cairo_t* cr, uint32_t rgb) {
  cairo_set_source_rgb(cr, ((rgb >> 16) & 0xFF) / 255.0, ((rgb >> 8) & 0xFF) / 255.0, (rgb & 0xFF) / 255.0);
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

uint32_t category_color(int64_t category_id) noexcept {
  constexpr int64_t n = sizeof(kPalette) / sizeof(kPalette[0]);
  return kPalette[((category_id % n) + n) % n];
}

std::string render_detections_png(const core::Tensor& image, const std::vector<Detection>& detections,
                                  const DrawOptions& options) {
  if (image.dtype() != core::DType::kUInt8 || image.rank() != 3 ||
      (image.dim(2) != 1 && image.dim(2) != 3 && image.dim(2) != 4) || image.dim(0) < 1 || image.dim(1) < 1 ||
      image.dim(0) > 32767 || image.dim(1) > 32767) {
    throw_invalid("image", "expected uint8 [height, width, 1|3|4] up to 32767 pixels a side, got " +
                               std::string(core::dtype_name(image.dtype())) + " " + core::shape_to_string(image.shape()));
  }
  const int height = static_cast<int>(image.dim(0));
  const int width = static_cast<int>(image.dim(1));
  const int channels = static_cast<int>(image.dim(2));
  std::unique_ptr<cairo_surface_t, SurfaceDeleter> surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    throw Error(ErrorKind::kIo, "image", "cairo could not allocate a " + std::to_string(width) + "x" +
                                             std::to_string(height) + " surface");
  }
  // RGB24 pixels are native-endian 32-bit words 0x00RRGGBB; alpha is dropped (drawn as if over black).
  cairo_surface_flush(surface.get());
  unsigned char* dst = cairo_image_surface_get_data(surface.get());
  const int stride = cairo_image_surface_get_stride(surface.get());
  const uint8_t* src = image.data<uint8_t>();
  for (int y = 0; y < height; ++y) {
    auto* row = reinterpret_cast<uint32_t*>(dst + static_cast<std::ptrdiff_t>(y) * stride);
    for (int x = 0; x < width; ++x) {
      const uint8_t* p = src + (static_cast<std::size_t>(y) * width + x) * channels;
      const uint32_t r = p[0];
      const uint32_t g = channels >= 3 ? p[1] : p[0];
      const uint32_t b = channels >= 3 ? p[2] : p[0];
      row[x] = (r << 16) | (g << 8) | b;
    }
  }
  cairo_surface_mark_dirty(surface.get());

  std::unique_ptr<cairo_t, ContextDeleter> context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  const double line = options.line_width > 0 ? options.line_width : std::max(2.0, std::max(width, height) / 250.0);
  const double font_size = std::max(10.0, line * 5.0);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, font_size);
  cairo_set_line_width(cr, line);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);

  // Lowest scores first so that the most confident boxes end up on top.
  std::vector<const Detection*> order;
  for (const auto& d : detections) order.push_back(&d);
  std::stable_sort(order.begin(), order.end(), [](const Detection* a, const Detection* b) { return a->score < b->score; });
  for (const Detection* d : order) {
    const uint32_t color = category_color(d->category_id);
    set_color(cr, color);
    cairo_rectangle(cr, d->x0, d->y0, std::max(0.0F, d->x1 - d->x0), std::max(0.0F, d->y1 - d->y0));
    cairo_stroke(cr);

    char score[16];
    std::snprintf(score, sizeof(score), " %.2f", static_cast<double>(d->score));
    const std::string text = d->label + (options.show_scores ? score : "");
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text.c_str(), &ext);
    const double pad = line;
    const double tab_h = font_size + 2 * pad;
    const double tab_w = ext.x_advance + 2 * pad;
    // Above the box when it fits, inside it otherwise (boxes touching the top edge).
    double tab_x = std::clamp(static_cast<double>(d->x0) - line / 2, 0.0, std::max(0.0, width - tab_w));
    double tab_y = d->y0 - line / 2 - tab_h;
    if (tab_y < 0) tab_y = d->y0 + line / 2;
    cairo_rectangle(cr, tab_x, tab_y, tab_w, tab_h);
    cairo_fill(cr);
    const uint32_t luminance = (((color >> 16) & 0xFF) * 299 + ((color >> 8) & 0xFF) * 587 + (color & 0xFF) * 114) / 1000;
    set_color(cr, luminance > 140 ? 0x000000 : 0xFFFFFF);
    cairo_move_to(cr, tab_x + pad, tab_y + pad + font_size * 0.8);
    cairo_show_text(cr, text.c_str());
  }
  cairo_surface_flush(surface.get());

  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(surface.get(), append_to_string, &png);
  if (status != CAIRO_STATUS_SUCCESS) {
    throw Error(ErrorKind::kInternal, "image", std::string("cairo could not encode PNG: ") + cairo_status_to_string(status));
  }
  return png;
}

void draw_detections_png(const core::Tensor& image, const std::vector<Detection>& detections,
                         const std::filesystem::path& path, const DrawOptions& options) {
  core::write_file_atomic(path, render_detections_png(image, detections, options));
}

}  // namespace detrq::vision
