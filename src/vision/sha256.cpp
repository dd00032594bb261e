// sha256_hex: the digest that identifies calibration tensors and their sources in manifest.json (OpenSSL).
#include <openssl/evp.h>

#include <array>
#include <memory>

#include "detrq/core/error.h"
#include "detrq/vision/calibration_tensors.h"

namespace detrq::vision {

std::string sha256_hex(const void* data, std::size_t size) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data, size, digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorKind::kInternal, "sha256", "OpenSSL EVP_Digest failed", "a bug or a broken OpenSSL");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * length, '0');
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
  return hex;
}

}  // namespace detrq::vision
