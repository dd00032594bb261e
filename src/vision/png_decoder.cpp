// PNG decoding with libpng into RGB8: palette and gray expanded to RGB, alpha stripped (not composited),
// 16-bit samples reduced to their high byte, as Pillow's convert("RGB") does for 8-bit-per-channel output.
#include <csetjmp>
#include <cstring>
#include <vector>

#include <png.h>

#include "detrq/core/error.h"
#include "vision/detail/codecs.h"

namespace detrq::vision::detail {
namespace {

struct PngState {
  const uint8_t* data = nullptr;
  std::size_t size = 0;
  std::size_t pos = 0;
  std::jmp_buf jump;
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::strncpy(st->message, msg, sizeof st->message - 1);
  std::longjmp(st->jump, 1);
}

void on_warning(png_structp, png_const_charp) {}  // ancillary-chunk trouble does not change pixels

void read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (st->size - st->pos < n) png_error(png, "truncated file (premature end of data)");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

// Both functions run in C-only frames: libpng longjmps out of them on error.
bool read_header(png_structp png, png_infop info, PngState* st, png_uint_32* w, png_uint_32* h) {
  if (setjmp(st->jump)) return false;
  png_set_read_fn(png, st, read_bytes);
  png_read_info(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *w = png_get_image_width(png, info);
  *h = png_get_image_height(png, info);
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8) png_error(png, "unexpected layout");
  return true;
}

bool read_pixels(png_structp png, png_infop info, PngState* st, png_bytepp rows) {
  if (setjmp(st->jump)) return false;
  png_read_image(png, rows);
  png_read_end(png, info);  // checks the trailing chunks too: a file cut after IDAT is still truncated
  return true;
}

}  // namespace

RgbImage decode_png(std::span<const uint8_t> bytes, const std::string& name) {
  PngState st;
  st.data = bytes.data();
  st.size = bytes.size();
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning);
  if (png == nullptr) throw std::bad_alloc();
  png_infop info = png_create_info_struct(png);
  struct Destroy {
    png_structp* p;
    png_infop* i;
    ~Destroy() { png_destroy_read_struct(p, i, nullptr); }
  } destroy{&png, &info};
  if (info == nullptr) throw std::bad_alloc();
  png_set_user_limits(png, 1u << 20, 1u << 20);

  png_uint_32 w = 0, h = 0;
  if (!read_header(png, info, &st, &w, &h)) {
    throw_invalid(name, std::string("corrupt PNG: ") + st.message, "re-download or re-export the image");
  }
  if (static_cast<int64_t>(w) * h > kMaxImagePixels) {
    throw_unsupported(name, "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels is too large",
                      "downscale it below 179 megapixels");
  }
  RgbImage image(static_cast<int>(w), static_cast<int>(h));
  std::vector<png_bytep> rows(h);
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = image.row(static_cast<int>(y));
  if (!read_pixels(png, info, &st, rows.data())) {
    throw_invalid(name, std::string("corrupt or truncated PNG: ") + st.message, "re-download or re-export the image");
  }
  return image;
}

}  // namespace detrq::vision::detail
