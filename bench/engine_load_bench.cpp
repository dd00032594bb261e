// Load time of a CPU engine file against loading the ONNX model it was built from, both into a ready
// Session, in the same run, and the two files' sizes. Usage: engine_load_bench MODEL.onnx [ROUNDS]; a
// model with DequantizeLinear nodes is built as a Q/DQ model (--qdq). Prints one line per way and the
// ratio. Default model: ../shared/models/rfdetr_small_random.onnx (the team's reference folder).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "detrq/core/error.h"
#include "detrq/engine/cpu/cpu_builder.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace fs = std::filesystem;

template <typename F>
double best_ms(int rounds, F&& f) {
  double best = 1e30;
  for (int i = 0; i < rounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int main(int argc, char** argv) {
  const fs::path model = argc > 1 ? fs::path(argv[1]) : fs::path(DETRQ_SOURCE_TREE) / ".." / "shared" / "models" / "rfdetr_small_random.onnx";
  const int rounds = argc > 2 ? std::stoi(argv[2]) : 5;
  if (!fs::exists(model)) {
    std::fprintf(stderr, "engine_load_bench: %s not found (pass a model)\n", model.c_str());
    return 2;
  }
  try {
    const fs::path engine = fs::temp_directory_path() / "detrq_engine_load_bench.engine";
    detrq::engine::BuildRequest req;
    bool qdq = false;
    for (const auto& n : detrq::onnx::load_model(model).graph.nodes) qdq |= n.op_type == "DequantizeLinear";
    (qdq ? req.qdq : req.onnx) = model;
    req.output = engine;
    detrq::engine::cpu::CpuBuilder().build(req);
    const double onnx_ms = best_ms(rounds, [&] { detrq::runtime::Session s(detrq::onnx::load_model(model)); });
    const double engine_ms = best_ms(rounds, [&] {
      detrq::runtime::Session s = detrq::engine::cpu::engine_session(detrq::engine::cpu::read_engine_file(engine), engine);
    });
    const double parse_onnx_ms = best_ms(rounds, [&] { detrq::onnx::load_model(model); });
    const double map_engine_ms = best_ms(rounds, [&] { detrq::engine::cpu::read_engine_file(engine); });
    std::printf("model: %s (%s, %.1f MB), engine %.1f MB, best of %d\n", model.c_str(), qdq ? "Q/DQ" : "FP32",
                fs::file_size(model) / 1048576.0, fs::file_size(engine) / 1048576.0, rounds);
    std::printf("ONNX   load_model + Session: %8.1f ms\n", onnx_ms);
    std::printf("engine map + Session:        %8.1f ms\n", engine_ms);
    std::printf("  of which ONNX parse %.1f ms, engine map and check %.1f ms\n", parse_onnx_ms, map_engine_ms);
    std::printf("engine load time / ONNX load time: %.2f\n", engine_ms / onnx_ms);
    fs::remove(engine);
  } catch (const detrq::Error& e) {
    std::fprintf(stderr, "engine_load_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
