// Image decoding: JPEG (libjpeg-turbo) and PNG (libpng) to RgbImage. Grayscale becomes three equal
// channels, alpha is dropped without compositing, 16-bit samples keep their high byte; CMYK and YCCK
// JPEGs become RGB (their inks read as inverted where an Adobe APP14 marker says so, as Photoshop writes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "detrq/vision/rgb_image.h"

namespace detrq::vision {

enum class ImageFormat { kUnknown, kJpeg, kPng };

// Recognizes the format by its signature bytes, not by the file name.
ImageFormat sniff_image_format(std::span<const uint8_t> bytes) noexcept;

// Decodes a JPEG or PNG file. Any other format, a corrupt or a truncated file (libjpeg-turbo's
// "premature end of data" included) throws kInvalidInput naming the file; an unreadable file throws kIo.
RgbImage decode_image(const std::filesystem::path& path);

// Same, from bytes in memory; `name` is what errors call the data (a file name or a URL).
RgbImage decode_image(std::span<const uint8_t> bytes, const std::string& name);

// True when `bytes` is a complete JPEG that decodes without any warning (what the COCO fetcher keeps).
bool is_complete_jpeg(std::span<const uint8_t> bytes) noexcept;

// True for file names detrq treats as images: .jpg, .jpeg, .png in any case.
bool has_image_extension(const std::filesystem::path& path);

}  // namespace detrq::vision
