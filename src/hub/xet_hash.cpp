// Xet's hash functions over BLAKE3, following xet-core's documented construction: the keys are the
// protocol's constants; merkle nodes hash the text "<hex> : <size>\n" of their children, and a group of
// children ends at a child whose hash is 0 mod 4 (at least 2, at most 9 children per node).
#include "hub/xet_hash.h"

#include <cstring>

namespace detrq::hub::detail {
namespace {

constexpr Blake3Key kDataKey = {102, 151, 245, 119, 91,  149, 80,  222, 49,  53,  203, 172, 165, 151, 24,  28,
                                157, 228, 33,  16,  155, 235, 43,  88,  180, 208, 176, 75,  147, 173, 242, 41};
constexpr Blake3Key kInternalNodeKey = {1,   126, 197, 199, 165, 71, 41,  150, 253, 148, 102,
                                        102, 180, 138, 2,   230, 93, 221, 83,  111, 55,  199,
                                        109, 210, 248, 99,  82,  230, 74,  83,  113, 63};
constexpr Blake3Key kVerificationKey = {127, 24,  87,  214, 206, 86,  237, 102, 18, 127, 249,
                                        19,  231, 165, 195, 243, 164, 205, 38,  213, 181, 219,
                                        73,  230, 65,  36,  152, 127, 40,  251, 148, 195};
constexpr Blake3Key kZeroKey = {};
constexpr std::size_t kBranching = 4, kMaxGroup = 2 * kBranching + 1;

// The hash's last little-endian u64 modulo the branching factor.
bool is_cut(const XetHash& h) { return h[24] % kBranching == 0; }

// Children [0, n) of `entries` that form the next node.
std::size_t next_group(const std::pair<XetHash, uint64_t>* entries, std::size_t n) {
  if (n <= 2) return n;
  const std::size_t end = std::min(kMaxGroup, n);
  for (std::size_t i = 2; i < end; ++i) {
    if (is_cut(entries[i].first)) return i + 1;
  }
  return end;
}

std::pair<XetHash, uint64_t> merge(const std::pair<XetHash, uint64_t>* entries, std::size_t n) {
  std::string text;
  uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    text += xet_hex(entries[i].first) + " : " + std::to_string(entries[i].second) + "\n";
    total += entries[i].second;
  }
  return {blake3_keyed(kInternalNodeKey, text), total};
}

}  // namespace

std::string xet_hex(const XetHash& h) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (int word = 0; word < 4; ++word) {
    for (int b = 7; b >= 0; --b) {
      const uint8_t v = h[word * 8 + b];
      out += digits[v >> 4];
      out += digits[v & 15];
    }
  }
  return out;
}

std::optional<XetHash> xet_from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  XetHash h{};
  for (int word = 0; word < 4; ++word) {
    for (int b = 0; b < 8; ++b) {
      int v = 0;
      for (int k = 0; k < 2; ++k) {
        const char c = hex[word * 16 + (7 - b) * 2 + k];
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        v = v * 16 + d;
      }
      h[word * 8 + b] = static_cast<uint8_t>(v);
    }
  }
  return h;
}

XetHash xet_chunk_hash(const void* data, std::size_t size) { return blake3_keyed(kDataKey, data, size); }

XetHash xet_merkle_root(std::vector<std::pair<XetHash, uint64_t>> level) {
  if (level.empty()) return XetHash{};
  while (level.size() > 1) {
    std::vector<std::pair<XetHash, uint64_t>> next;
    for (std::size_t i = 0; i < level.size();) {
      const std::size_t n = next_group(level.data() + i, level.size() - i);
      next.push_back(merge(level.data() + i, n));
      i += n;
    }
    level = std::move(next);
  }
  return level[0].first;
}

XetHash xet_file_hash(const std::vector<std::pair<XetHash, uint64_t>>& chunks) {
  if (chunks.empty()) return XetHash{};
  const XetHash root = xet_merkle_root(chunks);
  return blake3_keyed(kZeroKey, root.data(), root.size());
}

XetHash xet_range_hash(const std::vector<XetHash>& chunk_hashes) {
  std::string bytes;
  for (const XetHash& h : chunk_hashes) bytes.append(reinterpret_cast<const char*>(h.data()), h.size());
  return blake3_keyed(kVerificationKey, bytes);
}

}  // namespace detrq::hub::detail
