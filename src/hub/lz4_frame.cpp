// LZ4 frames (magic 0x184D2204: descriptor, blocks, end mark, optional checksums) and LZ4 blocks
// (sequences of literals and back-references). Checksums are skipped: the caller verifies the decoded
// bytes with the content hash, which is stronger. Every bound is checked against the input and output.
#include "hub/lz4_frame.h"

#include <cstdint>

namespace detrq::hub::detail {
namespace {

uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Reads an LZ4 length extension (bytes of 255 continue it); false past the end of input.
bool read_length(const unsigned char*& p, const unsigned char* end, std::size_t& length) {
  unsigned char b = 255;
  while (b == 255) {
    if (p >= end) return false;
    b = *p++;
    length += b;
  }
  return true;
}

// Appends one block's output to `out`; back-references may reach into earlier blocks of the frame.
bool decode_block(const unsigned char* p, const unsigned char* end, std::string& out, std::size_t max_output) {
  while (p < end) {
    const unsigned char token = *p++;
    std::size_t literals = token >> 4;
    if (literals == 15 && !read_length(p, end, literals)) return false;
    if (literals > static_cast<std::size_t>(end - p) || out.size() + literals > max_output) return false;
    out.append(reinterpret_cast<const char*>(p), literals);
    p += literals;
    if (p == end) return true;  // the last sequence carries literals only
    if (end - p < 2) return false;
    const std::size_t offset = static_cast<std::size_t>(p[0]) | static_cast<std::size_t>(p[1]) << 8;
    p += 2;
    std::size_t match = token & 15;
    if (match == 15 && !read_length(p, end, match)) return false;
    match += 4;
    if (offset == 0 || offset > out.size() || out.size() + match > max_output) return false;
    const std::size_t from = out.size() - offset;
    for (std::size_t i = 0; i < match; ++i) out.push_back(out[from + i]);  // may overlap itself
  }
  return true;
}

// Decodes one frame starting at p; returns the position after it, or nullptr when malformed.
const unsigned char* decode_frame(const unsigned char* p, const unsigned char* end, std::string& out,
                                  std::size_t max_output) {
  if (end - p < 7 || le32(p) != 0x184D2204u) return nullptr;
  p += 4;
  const unsigned char flg = p[0];
  if ((flg >> 6) != 1) return nullptr;
  const bool block_checksum = flg & 0x10, content_size = flg & 0x08, content_checksum = flg & 0x04, dict = flg & 0x01;
  const std::size_t descriptor = 3 + (content_size ? 8 : 0) + (dict ? 4 : 0);  // FLG, BD, [size], [dict], HC
  if (dict || static_cast<std::size_t>(end - p) < descriptor) return nullptr;
  p += descriptor;
  for (;;) {
    if (end - p < 4) return nullptr;
    const uint32_t word = le32(p);
    p += 4;
    if (word == 0) break;  // end mark
    const std::size_t size = word & 0x7FFFFFFFu;
    if (size > static_cast<std::size_t>(end - p)) return nullptr;
    if (word & 0x80000000u) {
      if (out.size() + size > max_output) return nullptr;
      out.append(reinterpret_cast<const char*>(p), size);
    } else if (!decode_block(p, p + size, out, max_output)) {
      return nullptr;
    }
    p += size;
    if (block_checksum) {
      if (end - p < 4) return nullptr;
      p += 4;
    }
  }
  if (content_checksum) {
    if (end - p < 4) return nullptr;
    p += 4;
  }
  return p;
}

}  // namespace

std::optional<std::string> lz4_frame_decode(std::string_view in, std::size_t max_output) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const auto* end = p + in.size();
  std::string out;
  if (p == end) return std::nullopt;
  while (p < end) {
    p = decode_frame(p, end, out, max_output);
    if (!p) return std::nullopt;
  }
  return out;
}

std::string bg4_ungroup(std::string_view grouped) {
  const std::size_t n = grouped.size(), split = n / 4, rem = n % 4;
  std::size_t start[4];
  std::size_t offset = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    start[k] = offset;
    offset += split + (rem > k ? 1 : 0);
  }
  std::string out(n, '\0');
  for (std::size_t j = 0; j < n; ++j) out[j] = grouped[start[j % 4] + j / 4];
  return out;
}

}  // namespace detrq::hub::detail
