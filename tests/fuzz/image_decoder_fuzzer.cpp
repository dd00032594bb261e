// libFuzzer target for vision::decode_image: any bytes must decode or throw detrq::Error, never crash.
#include <cstddef>
#include <cstdint>

#include "detrq/core/error.h"
#include "detrq/vision/image_decoder.h"
#include "detrq/vision/letterbox_transform.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto image = detrq::vision::decode_image(std::span<const uint8_t>(data, size), "fuzz");
    if (static_cast<int64_t>(image.width) * image.height <= 4096 * 4096) {
      static const detrq::vision::LetterboxTransform transform(64);
      (void)transform.letterbox_rgb(image);
    }
  } catch (const detrq::Error&) {
  }
  return 0;
}
