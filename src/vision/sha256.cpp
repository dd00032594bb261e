// sha256_hex: the digest that identifies calibration tensors and their sources in manifest.json.
#include "detrq/core/sha256.h"
#include "detrq/vision/calibration_tensors.h"

namespace detrq::vision {

std::string sha256_hex(const void* data, std::size_t size) { return core::sha256_hex(data, size); }

}  // namespace detrq::vision
