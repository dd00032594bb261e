// detrq's side of the Q/DQ benchmark (bench/qdq_int8_vs_onnxruntime.py runs onnxruntime beside it):
// one Q/DQ model with the int8 MatMul fusion and without it, same input, same threads, runs interleaved.
//   qdq_int8_bench MODEL THREADS REPEAT   -> one JSON line: median ms of each, fused MatMul + Conv count
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace detrq;
  if (argc != 4) {
    std::fprintf(stderr, "usage: qdq_int8_bench MODEL THREADS REPEAT\n");
    return 2;
  }
  try {
    const onnx::Model model = onnx::load_model(argv[1]);
    runtime::SessionOptions fused_options;
    fused_options.threads = std::atoi(argv[2]);
    runtime::SessionOptions float_options = fused_options;
    float_options.fuse_qdq = false;
    runtime::Session fused(model, fused_options);
    runtime::Session plain(model, float_options);
    const int repeat = std::max(1, std::atoi(argv[3]));
    std::map<std::string, core::Tensor> feed;
    std::mt19937 rng(0);
    std::normal_distribution<float> dist(0.0F, 1.0F);
    for (const auto& in : fused.inputs()) {
      core::Tensor t = core::Tensor::empty(in.dtype, in.shape);
      if (in.dtype == core::DType::kFloat32) {
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
      }
      feed[in.name] = t;
    }
    std::size_t qmatmuls = 0;
    for (const auto& n : fused.model().graph.nodes) qmatmuls += n.op_type == "QMatMulF" || n.op_type == "QConvF" ? 1 : 0;
    fused.run(feed);  // warm-up
    plain.run(feed);
    std::vector<double> fused_ms;
    std::vector<double> plain_ms;
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < repeat; ++i) {
      auto t = Clock::now();
      fused.run(feed);
      fused_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      t = Clock::now();
      plain.run(feed);
      plain_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    }
    std::printf("{\"fused_ms\": %.3f, \"float_ms\": %.3f, \"int8_nodes\": %zu}\n", median(fused_ms),
                median(plain_ms), qmatmuls);
  } catch (const Error& e) {
    std::fprintf(stderr, "qdq_int8_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
