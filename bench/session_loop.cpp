// One resident detrq Session that runs the model once per "run" line on stdin and answers with the
// latency in ms: bench/runtime_vs_onnxruntime.py --interleave drives it and an onnxruntime session the
// same way, one inference of each in turn, so that this machine's drifting speed weighs on both alike.
// Usage: session_loop MODEL INPUT.npy THREADS  (a warm-up run first; "ready" when loaded; EOF ends it)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "detrq/onnx/tensor_file.h"
#include "detrq/runtime/session.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: session_loop MODEL INPUT.npy THREADS\n");
    return 2;
  }
  try {
    detrq::runtime::SessionOptions options;
    options.threads = std::atoi(argv[3]);
    detrq::runtime::Session session = detrq::runtime::Session::load(argv[1], options);
    const std::map<std::string, detrq::core::Tensor> inputs{{session.inputs().at(0).name,
                                                             detrq::onnx::read_npy(argv[2])}};
    session.run(inputs);
    std::printf("ready\n");
    std::fflush(stdout);
    for (std::string line; std::getline(std::cin, line);) {
      if (line != "run") continue;
      const auto start = std::chrono::steady_clock::now();
      session.run(inputs);
      std::printf("%.3f\n", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "session_loop: %s\n", e.what());
    return 1;
  }
  return 0;
}
