// libFuzzer target for the ONNX model loader: parsing, conversion to the IR (tensor size checks,
// attributes), the graph passes Session runs first (Constant folding into initializers, topological
// order with cycle/dangling checks, dead-node removal) and serialization. Any detrq::Error is an
// accepted answer; a crash, sanitizer report or other exception is a bug.
#include <cstddef>
#include <cstdint>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_passes.h"
#include "detrq/onnx/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    detrq::onnx::Model model = detrq::onnx::parse_model(data, size, "fuzz.onnx");
    const std::string bytes = detrq::onnx::serialize_model(model);
    detrq::onnx::Model again = detrq::onnx::parse_model(bytes.data(), bytes.size(), "fuzz-again.onnx");
    detrq::onnx::constants_to_initializers(again.graph);
    (void)detrq::onnx::topological_order(again.graph);
    (void)detrq::onnx::remove_dead_nodes(again.graph);
  } catch (const detrq::Error&) {
  }
  return 0;
}
