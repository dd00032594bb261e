// Parsers for the two objects a Xet client uploads: a xorb (a run of compressed chunks, optionally
// followed by its footer) and a shard (the file reconstructions it describes). Pure functions over bytes:
// they check structure and recompute chunk hashes; what exists in storage is xet_store's business.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/xet_hash.h"

namespace detrq::hub::detail {

struct XorbChunk {
  uint64_t offset = 0;      // of the chunk's 8-byte header within the xorb
  uint32_t stored_len = 0;  // header + compressed bytes
  uint32_t unpacked_len = 0;
  XetHash hash{};
};

struct ParsedXorb {
  std::vector<XorbChunk> chunks;
  XetHash hash{};  // merkle root over the chunks
};

// Decodes every chunk (verifying its lengths) and computes the xorb hash; nullopt with `error` set when the
// bytes are not a well-formed xorb.
std::optional<ParsedXorb> parse_xorb(std::string_view bytes, std::string& error);
// The uncompressed bytes of the chunk at `chunk` (a header followed by its payload); nullopt when malformed.
std::optional<std::string> decode_xorb_chunk(std::string_view chunk);

struct ShardTerm {
  XetHash xorb{};
  uint32_t unpacked_bytes = 0;
  uint32_t chunk_start = 0, chunk_end = 0;  // [start, end) chunk indices in the xorb
  std::optional<XetHash> range_hash;        // the verification entry, when the shard carries one
};

struct ShardFile {
  XetHash file_hash{};
  std::vector<ShardTerm> terms;
  std::optional<std::string> sha256;  // lower-case hex, from the metadata extension
};

// The file-info section of a shard; nullopt with `error` set when malformed.
std::optional<std::vector<ShardFile>> parse_shard_files(std::string_view bytes, std::string& error);

}  // namespace detrq::hub::detail
