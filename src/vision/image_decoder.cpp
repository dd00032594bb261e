// Image decoding entry points: format sniffing and dispatch to the JPEG and PNG decoders.
#include "detrq/vision/image_decoder.h"

#include <algorithm>
#include <cctype>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "vision/detail/codecs.h"

namespace detrq::vision {

ImageFormat sniff_image_format(std::span<const uint8_t> b) noexcept {
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::kJpeg;
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (b.size() >= 8 && std::equal(kPng, kPng + 8, b.begin())) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

RgbImage decode_image(std::span<const uint8_t> bytes, const std::string& name) {
  switch (sniff_image_format(bytes)) {
    case ImageFormat::kJpeg: return detail::decode_jpeg(bytes, name);
    case ImageFormat::kPng: return detail::decode_png(bytes, name);
    case ImageFormat::kUnknown: break;
  }
  throw_invalid(name, bytes.empty() ? "empty file, not an image" : "not a JPEG or PNG image",
                "detrq reads .jpg/.jpeg and .png files; convert other formats first");
}

RgbImage decode_image(const std::filesystem::path& path) {
  const std::string bytes = core::read_file(path);
  return decode_image(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), path.string());
}

bool is_complete_jpeg(std::span<const uint8_t> bytes) noexcept {
  if (sniff_image_format(bytes) != ImageFormat::kJpeg) return false;
  try {
    detail::decode_jpeg(bytes, "<memory>");
    return true;
  } catch (...) {
    return false;
  }
}

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

}  // namespace detrq::vision
