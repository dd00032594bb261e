// Xorb and shard layouts as xet-core serializes them (little-endian throughout):
//   xorb  = chunk* [footer "XETBLOB"... u32 footer_length];  chunk = u8 version(0), u24 compressed_len,
//           u8 scheme (0 none, 1 LZ4, 2 byte-grouped LZ4), u24 unpacked_len, payload
//   shard = 32-byte tag, u64 version, u64 footer_size, then 48-byte records: per file a header
//           (hash, u32 flags, u32 n, u64), n terms (xorb hash, u32 flags, u32 bytes, u32 start, u32 end),
//           n verification records if flag bit 31, one sha256 record if bit 30; an all-0xFF hash ends it.
//   (the sha256 is stored the way Xet stores its own hashes: four little-endian u64 words)
#include "hub/xet_format.h"

#include <cstring>

#include "hub/lz4_frame.h"

namespace detrq::hub::detail {
namespace {

constexpr std::size_t kChunkHeader = 8, kRecord = 48;
constexpr uint32_t kMaxChunk = 16u << 20;  // the 24-bit length fields' reach
constexpr uint32_t kWithVerification = 1u << 31, kWithMetadataExt = 1u << 30;
constexpr unsigned char kShardTag[32] = {'H', 'F', 'R', 'e', 'p', 'o', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 0,   85,
                                         105, 103, 69,  106, 123, 129, 87,  131, 165, 189, 217, 92,  205, 209, 74,  169};

uint32_t le(const char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

XetHash hash_at(const char* p) {
  XetHash h;
  std::memcpy(h.data(), p, h.size());
  return h;
}

bool is_bookend(const char* p) {
  for (int i = 0; i < 32; ++i) {
    if (static_cast<unsigned char>(p[i]) != 0xFF) return false;
  }
  return true;
}

// Where the chunks end: before the footer when the bytes end with one.
std::size_t chunks_end(std::string_view bytes) {
  if (bytes.size() < 4) return bytes.size();
  const uint64_t info = le(bytes.data() + bytes.size() - 4, 4);
  if (info + 4 > bytes.size() || info < 7) return bytes.size();
  const std::size_t start = bytes.size() - 4 - info;
  return bytes.compare(start, 7, "XETBLOB") == 0 ? start : bytes.size();
}

}  // namespace

std::optional<std::string> decode_xorb_chunk(std::string_view chunk) {
  if (chunk.size() < kChunkHeader || chunk[0] != 0) return std::nullopt;
  const uint32_t compressed = le(chunk.data() + 1, 3), unpacked = le(chunk.data() + 5, 3);
  if (chunk.size() != kChunkHeader + compressed) return std::nullopt;
  const std::string_view payload = chunk.substr(kChunkHeader);
  std::optional<std::string> out;
  switch (static_cast<unsigned char>(chunk[4])) {
    case 0:
      out = std::string(payload);
      break;
    case 1:
      out = lz4_frame_decode(payload, unpacked);
      break;
    case 2:
      if ((out = lz4_frame_decode(payload, unpacked))) out = bg4_ungroup(*out);
      break;
    default:
      return std::nullopt;
  }
  if (!out || out->size() != unpacked) return std::nullopt;
  return out;
}

std::optional<ParsedXorb> parse_xorb(std::string_view bytes, std::string& error) {
  ParsedXorb x;
  const std::size_t end = chunks_end(bytes);
  std::vector<std::pair<XetHash, uint64_t>> entries;
  for (std::size_t pos = 0; pos < end;) {
    if (end - pos < kChunkHeader) return error = "truncated chunk header at byte " + std::to_string(pos), std::nullopt;
    const uint32_t compressed = le(bytes.data() + pos + 1, 3);
    if (compressed > end - pos - kChunkHeader || compressed > kMaxChunk) {
      return error = "chunk at byte " + std::to_string(pos) + " runs past the end", std::nullopt;
    }
    const auto data = decode_xorb_chunk(bytes.substr(pos, kChunkHeader + compressed));
    if (!data) return error = "chunk at byte " + std::to_string(pos) + " does not decode", std::nullopt;
    XorbChunk c{pos, static_cast<uint32_t>(kChunkHeader + compressed), static_cast<uint32_t>(data->size()),
                xet_chunk_hash(*data)};
    entries.emplace_back(c.hash, c.unpacked_len);
    x.chunks.push_back(c);
    pos += c.stored_len;
  }
  if (x.chunks.empty()) return error = "the xorb holds no chunks", std::nullopt;
  x.hash = xet_xorb_hash(entries);
  return x;
}

std::optional<std::vector<ShardFile>> parse_shard_files(std::string_view bytes, std::string& error) {
  if (bytes.size() < 48 || std::memcmp(bytes.data(), kShardTag, 32) != 0) {
    return error = "not a shard (wrong magic number)", std::nullopt;
  }
  std::vector<ShardFile> files;
  std::size_t pos = 48;
  auto need = [&](std::size_t records) { return bytes.size() - pos >= records * kRecord; };
  for (;;) {
    if (!need(1)) return error = "the file section has no end marker", std::nullopt;
    const char* h = bytes.data() + pos;
    if (is_bookend(h)) break;
    ShardFile f;
    f.file_hash = hash_at(h);
    const uint32_t flags = le(h + 32, 4), n = le(h + 36, 4);
    pos += kRecord;
    const std::size_t records = std::size_t{n} * ((flags & kWithVerification) ? 2 : 1) + ((flags & kWithMetadataExt) ? 1 : 0);
    if (n == 0 || n > (1u << 20) || !need(records)) return error = "file record with a bad term count", std::nullopt;
    for (uint32_t i = 0; i < n; ++i, pos += kRecord) {
      const char* t = bytes.data() + pos;
      f.terms.push_back({hash_at(t), le(t + 36, 4), le(t + 40, 4), le(t + 44, 4), std::nullopt});
    }
    if (flags & kWithVerification) {
      for (uint32_t i = 0; i < n; ++i, pos += kRecord) f.terms[i].range_hash = hash_at(bytes.data() + pos);
    }
    if (flags & kWithMetadataExt) {
      f.sha256 = xet_hex(hash_at(bytes.data() + pos));  // stored as a Xet hash, so spelled like one
      pos += kRecord;
    }
    files.push_back(std::move(f));
  }
  return files;
}

}  // namespace detrq::hub::detail
