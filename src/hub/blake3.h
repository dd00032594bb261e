// BLAKE3 (plain and keyed, 32-byte output), written from the BLAKE3 specification: the hash behind every
// Xet content id (chunk, xorb, file). Debian 12 packages no BLAKE3 library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace detrq::hub::detail {

using Blake3Key = std::array<uint8_t, 32>;
using Blake3Digest = std::array<uint8_t, 32>;

Blake3Digest blake3(const void* data, std::size_t size);
// The keyed mode (the spec's `keyed_hash`): the key replaces the IV and every compression carries KEYED_HASH.
Blake3Digest blake3_keyed(const Blake3Key& key, const void* data, std::size_t size);
inline Blake3Digest blake3_keyed(const Blake3Key& key, std::string_view bytes) {
  return blake3_keyed(key, bytes.data(), bytes.size());
}

}  // namespace detrq::hub::detail
