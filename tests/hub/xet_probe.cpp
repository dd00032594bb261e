// Test helper: prints detrq's BLAKE3 and Xet hashes of a file, so the pytest suite can compare them with
// the `blake3` package and with hf_xet (the real peers) on the same bytes.
//   xet_probe blake3 FILE | blake3-keyed KEYHEX FILE | chunk-hash FILE | file-hash-fixed CHUNK_BYTES FILE
//             | file-hash FILE (content-defined chunks, as hf_xet cuts them) | lz4-decode IN OUT
//             | xorb-hash FILE | shard-files FILE (exit 3: malformed)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "detrq/core/file_io.h"
#include "hub/blake3.h"
#include "hub/lz4_frame.h"
#include "hub/xet_chunker.h"
#include "hub/xet_format.h"
#include "hub/xet_hash.h"

namespace {

using namespace detrq::hub::detail;

std::string hex(const Blake3Digest& d) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

int usage() {
  std::fprintf(stderr, "usage: xet_probe blake3 FILE | blake3-keyed KEYHEX FILE | chunk-hash FILE | "
                       "file-hash-fixed CHUNK_BYTES FILE | file-hash FILE | lz4-decode IN OUT | xorb-hash FILE | "
                       "shard-files FILE\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string cmd = argv[1];
  if (cmd == "lz4-decode" && argc == 4) {
    const auto out = lz4_frame_decode(detrq::core::read_file(argv[2]), 64u << 20);
    if (!out) return 3;
    detrq::core::write_file_atomic(argv[3], *out);
    return 0;
  }
  const std::string data = detrq::core::read_file(argv[argc - 1]);
  if (cmd == "blake3" && argc == 3) {
    std::puts(hex(blake3(data.data(), data.size())).c_str());
  } else if (cmd == "blake3-keyed" && argc == 4 && std::string(argv[2]).size() == 64) {
    Blake3Key key;
    for (int i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>(std::stoi(std::string(argv[2] + 2 * i, 2), nullptr, 16));
    std::puts(hex(blake3_keyed(key, data)).c_str());
  } else if (cmd == "chunk-hash" && argc == 3) {
    std::puts(xet_hex(xet_chunk_hash(data)).c_str());
  } else if (cmd == "xorb-hash" && argc == 3) {
    std::string error;
    const auto xorb = parse_xorb(data, error);
    if (!xorb) return std::fprintf(stderr, "%s\n", error.c_str()), 3;
    std::printf("%s %zu\n", xet_hex(xorb->hash).c_str(), xorb->chunks.size());
  } else if (cmd == "shard-files" && argc == 3) {
    std::string error;
    const auto files = parse_shard_files(data, error);
    if (!files) return std::fprintf(stderr, "%s\n", error.c_str()), 3;
    for (const ShardFile& f : *files) {
      std::printf("%s %zu %s\n", xet_hex(f.file_hash).c_str(), f.terms.size(), f.sha256 ? f.sha256->c_str() : "-");
    }
  } else if (cmd == "file-hash" && argc == 3) {
    std::puts(xet_hex(xet_file_hash_of(data)).c_str());
  } else if (cmd == "file-hash-fixed" && argc == 4) {
    const std::size_t step = std::stoull(argv[2]);
    if (step == 0) return usage();
    std::vector<std::pair<XetHash, uint64_t>> chunks;
    for (std::size_t pos = 0; pos < data.size(); pos += step) {
      const std::string piece = data.substr(pos, step);
      chunks.emplace_back(xet_chunk_hash(piece), piece.size());
    }
    std::puts(xet_hex(xet_file_hash(chunks)).c_str());
  } else {
    return usage();
  }
  return 0;
}
