// Building the CPU engine (see cpu_builder.h).
#include "detrq/engine/cpu/cpu_builder.h"

#include <fmt/format.h>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/engine/cpu/prequantize.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace detrq::engine::cpu {

namespace {

bool has_qdq(const onnx::Model& m) {
  for (const auto& n : m.graph.nodes)
    if (n.op_type == "DequantizeLinear") return true;
  return false;
}

}  // namespace

BuildResult CpuBuilder::build(const BuildRequest& request) {
  const std::filesystem::path source = !request.qdq.empty() ? request.qdq : request.onnx;
  if (source.empty()) throw Error(ErrorKind::kUsage, "build-engine", "no model given", "pass --qdq, --onnx or --hf-repo");
  if (request.qdq.empty() && !request.calibration_cache.empty()) {
    throw_unsupported(request.calibration_cache.string(),
                      "the CPU engine cannot quantize from a TensorRT calibration cache",
                      "pass the Q/DQ model (inference_model.qdq.onnx) with --qdq, or use --backend tensorrt");
  }
  if (request.output.empty()) throw Error(ErrorKind::kUsage, "--output", "no output file given");

  onnx::Model model = onnx::load_model(source);
  const bool quantized = has_qdq(model);
  const PrequantizeSummary pq = prequantize_weights(model);
  if (pq.folded) {
    core::log_info("pre-quantized {} weights ({:.1f} MB of float32 -> {:.1f} MB of int8)", pq.folded,
                   pq.bytes_before / 1048576.0, pq.bytes_after / 1048576.0);
  }
  // The session infers shapes, folds constants, removes dead nodes, packs weights and plans the arena; its
  // model and its kernels' packed states are what the engine stores. Int8 weights stay int8 (a quarter of
  // the bytes): packed as int8 codes where their kernel packs (dequantized while restoring), else with
  // their DequantizeLinear, which the loading Session folds.
  // The kernels pack for the requested target, which may be wider than this machine (packing is data
  // layout): the engine then runs where it is loaded, if that CPU has what its states need.
  runtime::SessionOptions so;
  so.threads = request.threads;
  so.keep_int8_weights = true;
  so.target = runtime::CpuTarget::host();
  if (request.cpu_features) {
    std::string list;
    for (const auto& f : *request.cpu_features) list += f + " ";
    so.target = runtime::CpuTarget::parse(list.empty() ? "none" : list);
  }
  runtime::Session session(std::move(model), so);
  const auto states = session.packed_states();

  EngineHeader header;
  header.detrq_version = DETRQ_VERSION;
  runtime::CpuTarget needed;
  for (const auto& [key, state] : states) needed = needed.united(state.isa);
  header.cpu_features = needed.names();
  header.target_features = so.target.names();
  header.built_on_features = host_cpu_features();
  header.source_name = source.filename().string();
  header.source_sha256 = "";  // filled by the pipeline, which hashes its inputs anyway
  header.precision = quantized ? "int8" : "float32";
  header.arena_bytes = session.arena_bytes();
  write_engine_file(session.model(), states, header, request.output);

  BuildResult result;
  result.backend = "cpu";
  result.description = fmt::format(
      "{} -> {}: detrq CPU engine, {}, {} nodes, {} pre-packed, {:.1f} MB arena, packed for {}, needs {}",
      source.string(), request.output.string(), header.precision, session.model().graph.nodes.size(), states.size(),
      header.arena_bytes / 1048576.0, so.target.empty() ? "any x86-64 CPU" : so.target.to_string(),
      needed.empty() ? "any x86-64 CPU" : needed.to_string());
  return result;
}

}  // namespace detrq::engine::cpu
