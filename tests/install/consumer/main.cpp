// Loads an ONNX model with the installed libdetrq (protobuf, ONNX and the runtime) and prints its outputs.
#include <cstdio>
#include "detrq/runtime/session.h"
int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const auto session = detrq::runtime::Session::load(argv[1]);
  for (const auto& output : session.outputs()) std::printf("%s\n", output.name.c_str());
}
