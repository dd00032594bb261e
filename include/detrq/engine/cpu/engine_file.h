// The CPU engine file: an optimized graph and its weights in one file that is memory-mapped at load.
// Layout (little-endian): a 64-byte preamble (magic "DETRQENG", format version, sizes, checksums), a JSON
// header (what it was built from and for, the graph's nodes), then the weights, each 64-byte aligned, which
// tensors view in place: loading reads the header and checks, it never copies or parses the weights.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "detrq/core/file_io.h"
#include "detrq/engine/cpu/cpu_features.h"
#include "detrq/onnx/model.h"

namespace detrq::engine::cpu {

inline constexpr char kEngineMagic[8] = {'D', 'E', 'T', 'R', 'Q', 'E', 'N', 'G'};
inline constexpr uint32_t kEngineFormatVersion = 1;

struct EngineHeader {
  uint32_t format_version = kEngineFormatVersion;
  std::string detrq_version;
  std::vector<std::string> cpu_features;       // required at load: what the engine was built for
  std::vector<std::string> built_on_features;  // the building machine's, for the record
  std::string source_name;                     // the ONNX file it was built from
  std::string source_sha256;
  std::string precision;                       // "int8" (Q/DQ with pre-quantized weights) or "float32"
  uint64_t arena_bytes = 0;                    // activation memory the runtime planned at build time
  uint64_t weight_bytes = 0;                   // payload size
  uint64_t node_count = 0;
};

// Writes `model` with `header` to `path` atomically. Tensor attributes and initializers go to the payload.
// Throws kUnsupported for string tensors (RF-DETR graphs have none).
void write_engine_file(const onnx::Model& model, const EngineHeader& header, const std::filesystem::path& path);

struct EngineFile {
  EngineHeader header;
  onnx::Model model;                         // initializers view `mapping`
  std::shared_ptr<core::MappedFile> mapping;
};

// Maps and checks an engine file: magic, format version, sizes, header and weight checksums, and that
// `available_features` has every feature the engine was built for (kUnsupported otherwise, naming them).
// Anything malformed is kInvalidInput naming the file, with a hint to rebuild it.
EngineFile read_engine_file(const std::filesystem::path& path,
                            const std::vector<std::string>& available_features = host_cpu_features());

// Only the header, checked but without the CPU test or weight checksum (for inspection).
EngineHeader read_engine_header(const std::filesystem::path& path);

// True when the file starts with the engine magic (tells an engine from an ONNX file).
bool is_engine_file(const std::filesystem::path& path);

}  // namespace detrq::engine::cpu
