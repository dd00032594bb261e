// The vision input API called directly: decoding (formats, channel handling, corrupt data), letterbox
// geometry and invariants, calibration tensor files and the id list.
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/vision/calibration_tensors.h"
#include "detrq/vision/coco_fetcher.h"
#include "detrq/vision/image_decoder.h"
#include "detrq/vision/letterbox_transform.h"

namespace fs = std::filesystem;
using namespace detrq;
using namespace detrq::vision;

namespace {

std::vector<uint8_t> encode_png(int w, int h, int color_type, int bit_depth, const std::vector<uint8_t>& data,
                                const std::vector<png_color>& palette = {}) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep d, png_size_t n) {
        auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        v->insert(v->end(), d, d + n);
      },
      nullptr);
  png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  png_write_info(png, info);
  const std::size_t row = data.size() / h;
  for (int y = 0; y < h; ++y) png_write_row(png, const_cast<uint8_t*>(data.data() + y * row));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::vector<uint8_t> encode_jpeg(int w, int h, int components, const std::vector<uint8_t>& data) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  for (int i = 0; i < c.num_components; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(data.data() + c.next_scanline * w * components);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

std::vector<uint8_t> smooth_pixels(int w, int h, int channels) {
  std::vector<uint8_t> v(static_cast<std::size_t>(w) * h * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) v[(y * w + x) * channels + c] = static_cast<uint8_t>((x * 3 + y * 2 + c * 60) % 256);
  return v;
}

Error decode_error(std::span<const uint8_t> bytes, const std::string& name) {
  try {
    decode_image(bytes, name);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << name << " decoded without error";
  return Error(ErrorKind::kInternal, "", "");
}

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("detrq_vision_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST(VisionImageDecoder, PngRgbGrayAlphaPaletteAnd16Bit) {
  const int w = 37, h = 11;
  const auto rgb = smooth_pixels(w, h, 3);
  RgbImage im = decode_image(encode_png(w, h, PNG_COLOR_TYPE_RGB, 8, rgb), "rgb.png");
  EXPECT_EQ(im.width, w);
  EXPECT_EQ(im.height, h);
  EXPECT_EQ(im.pixels, rgb);

  const auto gray = smooth_pixels(w, h, 1);
  im = decode_image(encode_png(w, h, PNG_COLOR_TYPE_GRAY, 8, gray), "gray.png");
  for (std::size_t i = 0; i < gray.size(); ++i) {
    ASSERT_EQ(im.pixels[3 * i], gray[i]);
    ASSERT_EQ(im.pixels[3 * i + 1], gray[i]);
    ASSERT_EQ(im.pixels[3 * i + 2], gray[i]);
  }

  auto rgba = smooth_pixels(w, h, 4);
  for (std::size_t i = 3; i < rgba.size(); i += 4) rgba[i] = static_cast<uint8_t>(i % 7 == 0 ? 0 : 128);
  im = decode_image(encode_png(w, h, PNG_COLOR_TYPE_RGBA, 8, rgba), "rgba.png");
  for (std::size_t i = 0; i < static_cast<std::size_t>(w * h); ++i) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(im.pixels[3 * i + c], rgba[4 * i + c]) << "alpha must be dropped, not composited";
  }

  std::vector<png_color> palette{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 99, 199}};
  std::vector<uint8_t> indices(static_cast<std::size_t>(w) * h);
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<uint8_t>(i % 4);
  im = decode_image(encode_png(w, h, PNG_COLOR_TYPE_PALETTE, 8, indices, palette), "palette.png");
  for (std::size_t i = 0; i < indices.size(); ++i) {
    ASSERT_EQ(im.pixels[3 * i], palette[indices[i]].red);
    ASSERT_EQ(im.pixels[3 * i + 2], palette[indices[i]].blue);
  }

  std::vector<uint8_t> rgb16(rgb.size() * 2);  // big-endian 16-bit samples: the high byte is kept
  for (std::size_t i = 0; i < rgb.size(); ++i) {
    rgb16[2 * i] = rgb[i];
    rgb16[2 * i + 1] = static_cast<uint8_t>(255 - rgb[i]);
  }
  im = decode_image(encode_png(w, h, PNG_COLOR_TYPE_RGB, 16, rgb16), "rgb16.png");
  EXPECT_EQ(im.pixels, rgb);
}

TEST(VisionImageDecoder, JpegColorAndGray) {
  const int w = 64, h = 40;
  const auto rgb = smooth_pixels(w, h, 3);
  RgbImage im = decode_image(encode_jpeg(w, h, 3, rgb), "rgb.jpg");
  ASSERT_EQ(im.width, w);
  ASSERT_EQ(im.height, h);
  double err = 0;
  for (std::size_t i = 0; i < rgb.size(); ++i) err += std::abs(int(im.pixels[i]) - int(rgb[i]));
  EXPECT_LT(err / rgb.size(), 3.0);  // quality 100, 4:4:4: only rounding and the (x*3 % 256) wrap edges

  const auto gray = smooth_pixels(w, h, 1);
  im = decode_image(encode_jpeg(w, h, 1, gray), "gray.jpg");
  for (std::size_t i = 0; i < gray.size(); ++i) {
    ASSERT_EQ(im.pixels[3 * i], im.pixels[3 * i + 1]);
    ASSERT_EQ(im.pixels[3 * i], im.pixels[3 * i + 2]);
  }
  EXPECT_TRUE(is_complete_jpeg(encode_jpeg(w, h, 1, gray)));
}

// A CMYK JPEG as Photoshop (Adobe APP14 marker, inks stored inverted: 255 - ink) or a plain CMYK writer
// (no marker, inks as they are) makes it; `jpeg_space` JCS_CMYK or JCS_YCCK (Adobe's transform 2).
std::vector<uint8_t> encode_cmyk_jpeg(int w, int h, const std::vector<uint8_t>& ink, J_COLOR_SPACE jpeg_space, bool adobe) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, jpeg_space);
  c.write_Adobe_marker = adobe ? TRUE : FALSE;
  jpeg_set_quality(&c, 100, TRUE);
  for (int i = 0; i < c.num_components; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(static_cast<std::size_t>(w) * 4);
  while (c.next_scanline < c.image_height) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      const uint8_t v = ink[c.next_scanline * row.size() + i];
      row[i] = adobe ? static_cast<uint8_t>(255 - v) : v;
    }
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

TEST(VisionImageDecoder, CmykAndYcckJpegsBecomeRgb) {
  // Flat 16x16 blocks of known inks (C, M, Y, K); each block's centre must decode to the RGB those inks
  // print as: R = (255 - C)(255 - K) / 255, G from M, B from Y.
  const uint8_t inks[8][4] = {{0, 0, 0, 0},     {255, 0, 0, 0},    {0, 255, 0, 0},   {0, 0, 255, 0},
                              {0, 0, 0, 255},   {40, 120, 200, 30}, {200, 10, 90, 100}, {128, 128, 128, 0}};
  const int w = 64, h = 32;
  std::vector<uint8_t> ink(static_cast<std::size_t>(w) * h * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < 4; ++k) ink[(y * w + x) * 4 + k] = inks[(y / 16) * 4 + x / 16][k];
  struct Variant {
    const char* name;
    J_COLOR_SPACE space;
    bool adobe;
  };
  for (const Variant v : {Variant{"adobe-cmyk.jpg", JCS_CMYK, true}, Variant{"adobe-ycck.jpg", JCS_YCCK, true},
                          Variant{"plain-cmyk.jpg", JCS_CMYK, false}}) {
    const RgbImage im = decode_image(encode_cmyk_jpeg(w, h, ink, v.space, v.adobe), v.name);
    ASSERT_EQ(im.width, w) << v.name;
    ASSERT_EQ(im.height, h) << v.name;
    for (int b = 0; b < 8; ++b) {
      const int x = (b % 4) * 16 + 8, y = (b / 4) * 16 + 8;
      for (int ch = 0; ch < 3; ++ch) {
        const double expected = (255.0 - inks[b][ch]) * (255.0 - inks[b][3]) / 255.0;
        EXPECT_NEAR(im.pixels[(y * w + x) * 3 + ch], expected, 3.0) << v.name << " block " << b << " channel " << ch;
      }
    }
  }
  // A truncated CMYK file is corrupt, as an RGB one is.
  const auto whole = encode_cmyk_jpeg(w, h, ink, JCS_CMYK, true);
  const Error e = decode_error(std::span<const uint8_t>(whole.data(), whole.size() / 2), "cut-cmyk.jpg");
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
  EXPECT_NE(std::string(e.what()).find("cut-cmyk.jpg"), std::string::npos) << e.what();
}

TEST(VisionImageDecoder, CorruptTruncatedAndUnknownDataNameTheFile) {
  const auto jpeg = encode_jpeg(64, 64, 3, smooth_pixels(64, 64, 3));
  const auto png = encode_png(64, 64, PNG_COLOR_TYPE_RGB, 8, smooth_pixels(64, 64, 3));
  for (std::size_t cut : {std::size_t{3}, jpeg.size() / 2, jpeg.size() - 2}) {
    std::span<const uint8_t> part(jpeg.data(), cut);
    const Error e = decode_error(part, "cut.jpg");
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("cut.jpg"), std::string::npos) << e.what();
    EXPECT_FALSE(is_complete_jpeg(part));
  }
  for (std::size_t cut : {std::size_t{8}, std::size_t{40}, png.size() / 2, png.size() - 4}) {
    const Error e = decode_error(std::span<const uint8_t>(png.data(), cut), "cut.png");
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << cut;
  }
  auto flipped = png;
  flipped[flipped.size() / 2] ^= 0x55;  // breaks the IDAT CRC or the zlib stream
  EXPECT_EQ(decode_error(flipped, "flipped.png").kind(), ErrorKind::kInvalidInput);
  const std::string gif = "GIF89a....";
  EXPECT_EQ(decode_error(std::span(reinterpret_cast<const uint8_t*>(gif.data()), gif.size()), "a.gif").kind(),
            ErrorKind::kInvalidInput);
  EXPECT_EQ(decode_error({}, "empty.jpg").kind(), ErrorKind::kInvalidInput);
  EXPECT_FALSE(is_complete_jpeg(png));
  EXPECT_THROW(decode_image(fs::path("/nonexistent/x.jpg")), Error);
}

TEST(VisionImageDecoder, ImageExtensions) {
  EXPECT_TRUE(has_image_extension("a.JPG"));
  EXPECT_TRUE(has_image_extension("a.jpeg"));
  EXPECT_TRUE(has_image_extension("x/y.Png"));
  EXPECT_FALSE(has_image_extension("a.gif"));
  EXPECT_FALSE(has_image_extension("jpg"));
}

TEST(VisionLetterboxTransform, GeometryFollowsFloat32TruncAndIntegerOffsets) {
  const LetterboxTransform t(512);
  for (auto [w, h] : std::vector<std::pair<int, int>>{{640, 427}, {427, 640}, {1, 1}, {512, 512}, {513, 311},
                                                        {37, 999}, {4099, 3001}, {1, 2000}}) {
    const auto g = t.geometry(w, h);
    const float scale = std::min(512.0f / float(w), 512.0f / float(h));
    EXPECT_EQ(g.scale, scale);
    EXPECT_EQ(g.resized_width, std::max(1, int(float(w) * scale)));
    EXPECT_EQ(g.resized_height, std::max(1, int(float(h) * scale)));
    EXPECT_EQ(g.offset_x, (512 - g.resized_width) / 2);
    EXPECT_EQ(g.offset_y, (512 - g.resized_height) / 2);
    EXPECT_TRUE(g.resized_width == 512 || g.resized_height == 512 || w == 1 || h == 1) << w << "x" << h;
  }
  EXPECT_THROW(t.geometry(0, 5), Error);
}

TEST(VisionLetterboxTransform, ConstantImageStaysConstantAndPaddingIs114) {
  const LetterboxTransform t(64);
  for (auto [w, h] : std::vector<std::pair<int, int>>{{200, 50}, {50, 200}, {7, 3}, {64, 64}, {1000, 999}}) {
    RgbImage im(w, h);
    for (std::size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(i % 3 == 0 ? 200 : 30);
    LetterboxGeometry g;
    const RgbImage canvas = t.letterbox_rgb(im, &g);
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) {
        const bool inside = x >= g.offset_x && x < g.offset_x + g.resized_width && y >= g.offset_y &&
                            y < g.offset_y + g.resized_height;
        const uint8_t* p = canvas.row(y) + 3 * x;
        ASSERT_EQ(p[0], inside ? 200 : 114) << w << "x" << h << " at " << x << "," << y;
        ASSERT_EQ(p[1], inside ? 30 : 114);
      }
    }
    // The float tensor is the normalized canvas.
    const auto r = t.apply(im);
    ASSERT_EQ(r.chw.shape(), (core::Shape{1, 3, 64, 64}));
    const float* f = r.chw.data<float>();
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 64 * 64; ++i) {
        const uint8_t v = canvas.pixels[3 * i + c];
        ASSERT_EQ(f[c * 64 * 64 + i], (float(v) / 255.0f - LetterboxTransform::kMean[c]) / LetterboxTransform::kStd[c]);
      }
    }
    EXPECT_EQ(r.scale, g.scale);
    EXPECT_EQ(r.offset_x, g.offset_x);
    EXPECT_EQ(r.offset_y, g.offset_y);
  }
}

TEST(VisionLetterboxTransform, ResizeToSameSizeIsIdentityAndRowsStayIndependent) {
  std::mt19937 rng(1);
  RgbImage im(33, 17);
  for (auto& v : im.pixels) v = static_cast<uint8_t>(rng());
  EXPECT_EQ(resize_bilinear_antialiased(im, 33, 17).pixels, im.pixels);
  // A horizontal-only resize of a picture whose rows are all equal keeps them equal.
  RgbImage rows(100, 5);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 300; ++x) rows.row(y)[x] = static_cast<uint8_t>(x * 7);
  const RgbImage out = resize_bilinear_antialiased(rows, 41, 5);
  for (int y = 1; y < 5; ++y) EXPECT_EQ(0, std::memcmp(out.row(0), out.row(y), out.row_bytes()));
}

TEST(VisionCalibrationTensors, ReadChecksSizeAndManifestRoundTrips) {
  const auto dir = temp_dir("tensors");
  std::vector<float> values(3 * 8 * 8);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = float(i) * 0.5f - 3.0f;
  core::write_file_atomic(dir / "calib_0000.bin", std::string_view(reinterpret_cast<const char*>(values.data()),
                                                                   values.size() * sizeof(float)));
  const auto t = read_calibration_tensor(dir / "calib_0000.bin", 8);
  ASSERT_EQ(t.shape(), (core::Shape{1, 3, 8, 8}));
  EXPECT_EQ(0, std::memcmp(t.data<float>(), values.data(), values.size() * sizeof(float)));
  try {
    read_calibration_tensor(dir / "calib_0000.bin", 512);
    FAIL() << "wrong size accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
  }

  CalibrationManifest m;
  m.input_width = m.input_height = 8;
  m.tensors.push_back({"calib_0000.bin", "a.jpg", sha256_hex(values.data(), values.size() * 4), "00", 0.64f, 0, 64});
  m.write(dir);
  const std::string text = core::read_file(dir / "manifest.json");
  EXPECT_NE(text.find("\"scale\": 0.64,"), std::string::npos) << text;
  const auto back = CalibrationManifest::read(dir);
  ASSERT_EQ(back.tensors.size(), 1u);
  EXPECT_EQ(back.tensors[0].scale, 0.64f);
  EXPECT_EQ(back.tensors[0].offset_y, 64);
  EXPECT_EQ(read_calibration_tensors(dir).size(), 1u);

  core::write_file_atomic(dir / "manifest.json", R"({"input_size": [8, 8], "tensors": [{"file": "../x"}]})");
  EXPECT_THROW(CalibrationManifest::read(dir), Error);
  fs::remove_all(dir);
}

TEST(VisionCalibrationTensors, Sha256KnownAnswer) {
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2
}

TEST(VisionCocoFetcher, DefaultIdsMatchTheShippedFileAndIdListsParse) {
  const char* source = std::getenv("DETRQ_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  const auto from_file = read_id_list(fs::path(source) / "data/coco_val2017_calibration_ids.txt");
  EXPECT_EQ(default_calibration_ids(), from_file);
  EXPECT_EQ(from_file.size(), 120u);
  EXPECT_EQ(from_file.front(), 139);
  EXPECT_EQ(coco_file_name(139), "000000000139.jpg");

  const auto dir = temp_dir("ids");
  core::write_file_atomic(dir / "ids.txt", "# header\n1 2\n\n3 # trailing comment\n");
  EXPECT_EQ(read_id_list(dir / "ids.txt"), (std::vector<int64_t>{1, 2, 3}));
  core::write_file_atomic(dir / "bad.txt", "1\n-4\n");
  EXPECT_THROW(read_id_list(dir / "bad.txt"), Error);
  core::write_file_atomic(dir / "empty.txt", "# nothing\n");
  EXPECT_THROW(read_id_list(dir / "empty.txt"), Error);
  fs::remove_all(dir);
}
