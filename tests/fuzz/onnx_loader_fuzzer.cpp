// libFuzzer target for the ONNX model loader: parsing, conversion to the IR (tensor size checks,
// attributes), the graph passes Session runs first (Constant folding into initializers, topological
// order with cycle/dangling checks, dead-node removal), serialization, and then a Session over the model
// (shape inference, constant folding, fusion, packing and the memory plan: a model that loads must not
// crash them). Any detrq::Error is an accepted answer; a crash, sanitizer report, other exception or huge
// allocation is a bug.
#include <cstddef>
#include <cstdint>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_passes.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    detrq::onnx::Model model = detrq::onnx::parse_model(data, size, "fuzz.onnx");
    const std::string bytes = detrq::onnx::serialize_model(model);
    detrq::onnx::Model again = detrq::onnx::parse_model(bytes.data(), bytes.size(), "fuzz-again.onnx");
    detrq::onnx::constants_to_initializers(again.graph);
    (void)detrq::onnx::topological_order(again.graph);
    (void)detrq::onnx::remove_dead_nodes(again.graph);
    detrq::runtime::SessionOptions options;
    options.threads = 1;
    detrq::runtime::Session session(std::move(model), std::move(options));
  } catch (const detrq::Error&) {
  }
  return 0;
}
