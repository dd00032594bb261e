// BLAKE3 from its specification (https://github.com/BLAKE3-team/BLAKE3-specs): the compression function,
// 1024-byte chunks of 64-byte blocks, and the binary tree whose left subtree holds the largest power of two
// of chunks. One-shot and recursive: Xet hashes at most a few hundred KiB at a time.
#include "hub/blake3.h"

#include <cstring>

namespace detrq::hub::detail {
namespace {

constexpr uint32_t kIv[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                             0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};
constexpr int kPermutation[16] = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};
constexpr uint32_t kChunkStart = 1, kChunkEnd = 2, kParent = 4, kRoot = 8, kKeyedHash = 16;
constexpr std::size_t kBlockLen = 64, kChunkLen = 1024;

using Words8 = std::array<uint32_t, 8>;

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline void g(uint32_t* s, int a, int b, int c, int d, uint32_t mx, uint32_t my) {
  s[a] = s[a] + s[b] + mx;
  s[d] = rotr(s[d] ^ s[a], 16);
  s[c] = s[c] + s[d];
  s[b] = rotr(s[b] ^ s[c], 12);
  s[a] = s[a] + s[b] + my;
  s[d] = rotr(s[d] ^ s[a], 8);
  s[c] = s[c] + s[d];
  s[b] = rotr(s[b] ^ s[c], 7);
}

// The compression function; returns the first 8 output words (all a 32-byte output needs).
Words8 compress(const Words8& cv, const uint32_t block[16], uint64_t counter, uint32_t block_len, uint32_t flags) {
  uint32_t s[16] = {cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7], kIv[0], kIv[1], kIv[2], kIv[3],
                    static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), block_len, flags};
  uint32_t m[16];
  std::memcpy(m, block, sizeof m);
  for (int round = 0; round < 7; ++round) {
    g(s, 0, 4, 8, 12, m[0], m[1]);
    g(s, 1, 5, 9, 13, m[2], m[3]);
    g(s, 2, 6, 10, 14, m[4], m[5]);
    g(s, 3, 7, 11, 15, m[6], m[7]);
    g(s, 0, 5, 10, 15, m[8], m[9]);
    g(s, 1, 6, 11, 12, m[10], m[11]);
    g(s, 2, 7, 8, 13, m[12], m[13]);
    g(s, 3, 4, 9, 14, m[14], m[15]);
    uint32_t permuted[16];
    for (int i = 0; i < 16; ++i) permuted[i] = m[kPermutation[i]];
    std::memcpy(m, permuted, sizeof m);
  }
  Words8 out;
  for (int i = 0; i < 8; ++i) out[i] = s[i] ^ s[i + 8];
  return out;
}

void load_block(const uint8_t* p, std::size_t n, uint32_t out[16]) {
  uint8_t padded[kBlockLen] = {};
  std::memcpy(padded, p, n);
  for (int i = 0; i < 16; ++i) {
    out[i] = static_cast<uint32_t>(padded[4 * i]) | static_cast<uint32_t>(padded[4 * i + 1]) << 8 |
             static_cast<uint32_t>(padded[4 * i + 2]) << 16 | static_cast<uint32_t>(padded[4 * i + 3]) << 24;
  }
}

// Chaining value of one chunk (at most 1024 bytes; the empty input is one empty block).
Words8 chunk_cv(const Words8& key, const uint8_t* p, std::size_t n, uint64_t counter, uint32_t flags, bool root) {
  Words8 cv = key;
  const std::size_t blocks = n == 0 ? 1 : (n + kBlockLen - 1) / kBlockLen;
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t len = b + 1 < blocks ? kBlockLen : n - b * kBlockLen;
    uint32_t block[16];
    load_block(p + b * kBlockLen, len, block);
    uint32_t f = flags;
    if (b == 0) f |= kChunkStart;
    if (b + 1 == blocks) f |= kChunkEnd | (root ? kRoot : 0);
    cv = compress(cv, block, counter, static_cast<uint32_t>(len), f);
  }
  return cv;
}

Words8 parent_cv(const Words8& key, const Words8& left, const Words8& right, uint32_t flags, bool root) {
  uint32_t block[16];
  for (int i = 0; i < 8; ++i) {
    block[i] = left[i];
    block[i + 8] = right[i];
  }
  return compress(key, block, 0, kBlockLen, flags | kParent | (root ? kRoot : 0));
}

// Bytes in the left subtree of an input of n > 1024 bytes: the largest power of two of whole chunks that
// leaves at least one byte for the right.
std::size_t left_len(std::size_t n) {
  const std::size_t chunks = (n - 1) / kChunkLen;  // full chunks that leave >= 1 byte
  std::size_t p = 1;
  while (p * 2 <= chunks) p *= 2;
  return p * kChunkLen;
}

Words8 subtree_cv(const Words8& key, const uint8_t* p, std::size_t n, uint64_t counter, uint32_t flags, bool root) {
  if (n <= kChunkLen) return chunk_cv(key, p, n, counter, flags, root);
  const std::size_t l = left_len(n);
  const Words8 left = subtree_cv(key, p, l, counter, flags, false);
  const Words8 right = subtree_cv(key, p + l, n - l, counter + l / kChunkLen, flags, false);
  return parent_cv(key, left, right, flags, root);
}

Blake3Digest to_bytes(const Words8& w) {
  Blake3Digest out;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(w[i] >> (8 * j));
  }
  return out;
}

}  // namespace

Blake3Digest blake3(const void* data, std::size_t size) {
  Words8 iv;
  std::memcpy(iv.data(), kIv, sizeof kIv);
  return to_bytes(subtree_cv(iv, static_cast<const uint8_t*>(data), size, 0, 0, true));
}

Blake3Digest blake3_keyed(const Blake3Key& key, const void* data, std::size_t size) {
  Words8 k;
  for (int i = 0; i < 8; ++i) {
    k[i] = static_cast<uint32_t>(key[4 * i]) | static_cast<uint32_t>(key[4 * i + 1]) << 8 |
           static_cast<uint32_t>(key[4 * i + 2]) << 16 | static_cast<uint32_t>(key[4 * i + 3]) << 24;
  }
  return to_bytes(subtree_cv(k, static_cast<const uint8_t*>(data), size, 0, kKeyedHash, true));
}

}  // namespace detrq::hub::detail
