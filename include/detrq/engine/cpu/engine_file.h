// The CPU engine file: an optimized graph, its weights and its kernels' packed weights in one file that is
// memory-mapped at load. Layout (little-endian): a 64-byte preamble (magic "DETRQENG", format version, sizes,
// checksums), a JSON header (what it was built from and for, the graph's nodes, which tensors are weights and
// which are packed kernel states), then every tensor, each 64-byte aligned, which tensors view in place:
// loading reads the header and checks, it never copies, parses or packs the weights.
// Version 2 added the packed states (version 1 stored only dequantized float weights).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "detrq/core/file_io.h"
#include "detrq/engine/cpu/cpu_features.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/packed_state.h"
#include "detrq/runtime/session.h"

namespace detrq::engine::cpu {

inline constexpr char kEngineMagic[8] = {'D', 'E', 'T', 'R', 'Q', 'E', 'N', 'G'};
inline constexpr uint32_t kEngineFormatVersion = 2;

struct EngineHeader {
  uint32_t format_version = kEngineFormatVersion;
  std::string detrq_version;
  // Required at load: exactly what the packed states need (write_engine_file adds any a state needs).
  std::vector<std::string> cpu_features;
  std::vector<std::string> target_features;    // what it was packed for (`--cpu-features`), for the record
  std::vector<std::string> built_on_features;  // the building machine's, for the record
  std::string source_name;                     // the ONNX file it was built from
  std::string source_sha256;
  std::string precision;                       // "int8" (Q/DQ with pre-quantized weights) or "float32"
  uint64_t arena_bytes = 0;                    // activation memory the runtime planned at build time
  uint64_t weight_bytes = 0;                   // payload size
  uint64_t node_count = 0;
  uint64_t packed_bytes = 0;                   // of which kernels' packed states
  uint64_t packed_state_count = 0;
};

// Writes `model`, the kernels' `packed_states` (Session::packed_states(), by node key) and `header` to `path`
// atomically. Tensor attributes, initializers and state blobs go to the payload. Throws kUnsupported for
// string tensors (RF-DETR graphs have none).
void write_engine_file(const onnx::Model& model, const std::map<std::string, runtime::PackedState>& packed_states,
                       const EngineHeader& header, const std::filesystem::path& path);

struct EngineFile {
  EngineHeader header;
  onnx::Model model;                         // initializers view `mapping`
  std::map<std::string, runtime::PackedState> packed_states;  // blobs view `mapping`
  std::shared_ptr<core::MappedFile> mapping;
};

// Maps and checks an engine file: magic, format version, sizes, header and weight checksums, and that
// `available_features` (the host's, or the target `--cpu-features` narrowed it to) has every feature the
// header requires and every one a packed state needs (kUnsupported otherwise, naming them).
// Anything malformed is kInvalidInput naming the file, with a hint to rebuild it.
EngineFile read_engine_file(const std::filesystem::path& path,
                            const std::vector<std::string>& available_features = host_cpu_features());

// A Session over the engine's plan whose kernels restore the stored packed states instead of packing;
// errors (a state this detrq cannot restore) name `path`. The Session keeps the mapping alive.
runtime::Session engine_session(EngineFile engine, const std::filesystem::path& path,
                                runtime::SessionOptions options = {});

// Only the header, checked but without the CPU test or weight checksum (for inspection).
EngineHeader read_engine_header(const std::filesystem::path& path);

// The checksum the preamble records for the header and for the payload. Public so that the fuzz target can
// repair a mutated file's checksums and reach the header and graph checks behind them.
uint64_t engine_checksum(const std::byte* data, std::size_t size);

// True when the file starts with the engine magic (tells an engine from an ONNX file).
bool is_engine_file(const std::filesystem::path& path);

}  // namespace detrq::engine::cpu
