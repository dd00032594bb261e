// The content ids the Xet protocol computes on the client and this server recomputes on arrival: chunk
// hashes (keyed BLAKE3 of the bytes), the aggregated merkle hash over (hash, size) pairs that names a xorb,
// the file hash (that root keyed once more), the shard's verification range hash, and Xet's hex spelling.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/blake3.h"

namespace detrq::hub::detail {

using XetHash = Blake3Digest;  // raw bytes, as BLAKE3 returns them and shards store them

// Xet prints a hash as four little-endian u64 words in hex, so each 8-byte group reads reversed.
std::string xet_hex(const XetHash& h);
std::optional<XetHash> xet_from_hex(std::string_view hex);

XetHash xet_chunk_hash(const void* data, std::size_t size);
inline XetHash xet_chunk_hash(std::string_view bytes) { return xet_chunk_hash(bytes.data(), bytes.size()); }

// The variable-branching merkle root over (hash, size) entries (all-zero for no entries).
XetHash xet_merkle_root(std::vector<std::pair<XetHash, uint64_t>> entries);
inline XetHash xet_xorb_hash(const std::vector<std::pair<XetHash, uint64_t>>& chunks) {
  return xet_merkle_root(chunks);
}
// A file's id: the merkle root over its chunks, keyed-hashed with an all-zero key (all-zero when empty).
XetHash xet_file_hash(const std::vector<std::pair<XetHash, uint64_t>>& chunks);
// A shard's per-term verification hash: keyed BLAKE3 over the concatenated chunk hashes of the term.
XetHash xet_range_hash(const std::vector<XetHash>& chunk_hashes);

}  // namespace detrq::hub::detail
