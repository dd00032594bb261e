// SHA-256 (OpenSSL EVP), streaming or one-shot, as lower-case hex: the one digest every module uses for
// content identity (calibration tensors, pipeline staleness, Hub LFS object ids).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace detrq::core {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t size);
  // Finishes the digest; call once.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(const void* data, std::size_t size);
inline std::string sha256_hex(std::string_view bytes) { return sha256_hex(bytes.data(), bytes.size()); }

}  // namespace detrq::core
