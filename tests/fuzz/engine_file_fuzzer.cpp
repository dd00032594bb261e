// libFuzzer target for the CPU engine file: read_engine_file (preamble, JSON header, tensor table, graph,
// packed states) on the input written to a file, then engine_session, which plans the graph and has every
// kernel restore its packed state. The input's header and payload checksums are recomputed before the read
// (what the mutator changes is otherwise refused at the checksum), so mutations reach the parsing behind it.
// Any detrq::Error is an accepted answer; a crash, sanitizer report, other exception or huge allocation is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/engine/cpu/engine_file.h"

namespace {

// The preamble fields the repair touches (engine_file.cpp's layout).
constexpr std::size_t kPreambleBytes = 64;
constexpr std::size_t kHeaderBytesAt = 16, kPayloadOffsetAt = 24, kHeaderSumAt = 40, kPayloadSumAt = 48;

uint64_t load64(const std::string& s, std::size_t at) {
  uint64_t v;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}
void store64(std::string& s, std::size_t at, uint64_t v) { std::memcpy(s.data() + at, &v, 8); }

void repair_checksums(std::string& file) {
  if (file.size() < kPreambleBytes) return;
  const uint64_t header_bytes = load64(file, kHeaderBytesAt);
  if (header_bytes <= file.size() - kPreambleBytes) {
    store64(file, kHeaderSumAt,
            detrq::engine::cpu::engine_checksum(reinterpret_cast<const std::byte*>(file.data()) + kPreambleBytes, header_bytes));
  }
  const uint64_t payload_offset = load64(file, kPayloadOffsetAt);
  if (payload_offset <= file.size()) {
    store64(file, kPayloadSumAt,
            detrq::engine::cpu::engine_checksum(reinterpret_cast<const std::byte*>(file.data()) + payload_offset,
                                                file.size() - payload_offset));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("detrq-engine-fuzz-" + std::to_string(::getpid()) + ".engine");
  std::string file(reinterpret_cast<const char*>(data), size);
  repair_checksums(file);
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (!file.empty() && std::fwrite(file.data(), 1, file.size(), f) != file.size()) std::abort();
    std::fclose(f);
  }
  try {
    (void)detrq::engine::cpu::read_engine_header(path);
    detrq::engine::cpu::EngineFile engine = detrq::engine::cpu::read_engine_file(path);
    detrq::runtime::SessionOptions options;
    options.threads = 1;
    detrq::runtime::Session session = detrq::engine::cpu::engine_session(std::move(engine), path, std::move(options));
  } catch (const detrq::Error&) {
  }
  return 0;
}
