// JPEG decoding with libjpeg-turbo into RGB8 (CMYK and YCCK files converted to RGB). Any libjpeg warning
// (e.g. "premature end of data") is treated as corruption: a calibration image must be exactly what the
// reference decoder sees.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include <jpeglib.h>

#include "detrq/core/error.h"
#include "vision/detail/codecs.h"

namespace detrq::vision::detail {
namespace {

// libjpeg reports errors through a callback that must not return; we longjmp back into the C-only
// frames below (no C++ object with a destructor lives across a setjmp).
struct JpegErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);  // a warning: corrupt or truncated data
}

bool read_header(jpeg_decompress_struct* cinfo, JpegErrorManager* err, const uint8_t* data, std::size_t size) {
  if (setjmp(err->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  // libjpeg has no CMYK-to-RGB conversion: CMYK and YCCK (Adobe's) files decode to CMYK, converted below.
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  cinfo->dct_method = JDCT_ISLOW;  // what Pillow uses: results must match it
  jpeg_start_decompress(cinfo);
  return true;
}

// Reads every scanline into `out` (rows of `row_bytes`, 3 bytes a pixel).
bool read_pixels(jpeg_decompress_struct* cinfo, JpegErrorManager* err, uint8_t* out, std::size_t row_bytes) {
  if (setjmp(err->jump)) return false;
  JSAMPROW rows[16];
  while (cinfo->output_scanline < cinfo->output_height) {
    const JDIMENSION first = cinfo->output_scanline;
    const JDIMENSION n = std::min<JDIMENSION>(16, cinfo->output_height - first);
    for (JDIMENSION i = 0; i < n; ++i) rows[i] = out + (first + i) * row_bytes;
    jpeg_read_scanlines(cinfo, rows, n);
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

// CMYK samples to RGB: R = (255 - C)(255 - K) / 255, rounded, and likewise G from M and B from Y (what
// Pillow's CMYK-to-RGB conversion computes). Files with an Adobe APP14 marker (Photoshop's, and every
// libjpeg-written CMYK or YCCK file) store the inks inverted (255 - C, ...), others store them as they are.
void cmyk_to_rgb(const uint8_t* cmyk, std::size_t pixels, bool inverted, uint8_t* rgb) {
  for (std::size_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const unsigned k = inverted ? cmyk[3] : 255u - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      const unsigned v = inverted ? cmyk[c] : 255u - cmyk[c];
      const unsigned t = v * k + 128;
      rgb[c] = static_cast<uint8_t>((t + (t >> 8)) >> 8);  // v * k / 255, rounded
    }
  }
}

// Like read_pixels for a CMYK decompression: 16 rows at a time into `scratch` (16 rows of 4 bytes a pixel),
// each converted into `out` (RGB rows of `row_bytes`), so the CMYK picture is never held whole.
bool read_cmyk_pixels(jpeg_decompress_struct* cinfo, JpegErrorManager* err, uint8_t* out, std::size_t row_bytes,
                      uint8_t* scratch) {
  if (setjmp(err->jump)) return false;
  const std::size_t cmyk_row = std::size_t{4} * cinfo->output_width;
  const bool inverted = cinfo->saw_Adobe_marker != 0;
  JSAMPROW rows[16];
  for (int i = 0; i < 16; ++i) rows[i] = scratch + i * cmyk_row;
  while (cinfo->output_scanline < cinfo->output_height) {
    const JDIMENSION first = cinfo->output_scanline;
    const JDIMENSION n = std::min<JDIMENSION>(16, cinfo->output_height - first);
    const JDIMENSION got = jpeg_read_scanlines(cinfo, rows, n);
    for (JDIMENSION i = 0; i < got; ++i) cmyk_to_rgb(rows[i], cinfo->output_width, inverted, out + (first + i) * row_bytes);
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

}  // namespace

RgbImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_error;
  err.base.emit_message = on_message;
  err.message[0] = '\0';

  struct Destroy {
    jpeg_decompress_struct* c;
    ~Destroy() { jpeg_destroy_decompress(c); }
  } destroy{&cinfo};

  if (!read_header(&cinfo, &err, bytes.data(), bytes.size())) {
    throw_invalid(name, std::string("corrupt JPEG: ") + err.message, "re-download or re-export the image");
  }
  const bool cmyk = cinfo.out_color_space == JCS_CMYK;
  if (cinfo.output_components != (cmyk ? 4 : 3)) {
    throw_unsupported(name, "JPEG decodes to " + std::to_string(cinfo.output_components) + " channels",
                      "convert it to RGB");
  }
  if (static_cast<int64_t>(cinfo.output_width) * cinfo.output_height > kMaxImagePixels) {
    throw_unsupported(name, "image of " + std::to_string(cinfo.output_width) + "x" +
                                std::to_string(cinfo.output_height) + " pixels is too large",
                      "downscale it below 179 megapixels");
  }
  RgbImage image(static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height));
  std::vector<uint8_t> scratch(cmyk ? std::size_t{16} * 4 * cinfo.output_width : 0);
  const bool ok = cmyk ? read_cmyk_pixels(&cinfo, &err, image.pixels.data(), image.row_bytes(), scratch.data())
                       : read_pixels(&cinfo, &err, image.pixels.data(), image.row_bytes());
  if (!ok) {
    throw_invalid(name, std::string("corrupt or truncated JPEG: ") + err.message,
                  "re-download or re-export the image");
  }
  return image;
}

}  // namespace detrq::vision::detail
