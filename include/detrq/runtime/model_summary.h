// What `detrq inspect` reports about a model: inputs, outputs, operator counts, parameters, estimated
// FLOPs and the planned peak memory (the last two from a Session plan, when detrq can run the model).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"

namespace detrq::runtime {

struct ModelSummary {
  int64_t opset = 0;
  int64_t ir_version = 0;
  std::string producer;
  std::vector<onnx::ValueInfo> inputs;   // static shapes once planned
  std::vector<onnx::ValueInfo> outputs;
  std::size_t nodes = 0;                           // in the file, Constant nodes included
  std::map<std::string, int64_t> operator_counts;  // "Conv", or "domain:Op" outside the default domain
  int64_t parameters = 0;                          // elements of all weights (initializers and Constants)
  std::size_t parameter_bytes = 0;
  // From the plan; `planned` is false (and `plan_error` says why) when detrq cannot run the model.
  bool planned = false;
  std::string plan_error;
  std::size_t planned_nodes = 0;  // after constant folding and dead-node removal
  int64_t flops = 0;
  std::size_t arena_bytes = 0;
  std::size_t planned_peak_bytes = 0;
  std::vector<PassReport> passes;  // what each planning pass changed, in order
};

// Summarizes `model`, planning it with `options` (unsupported operators and unknown input shapes are
// reported in plan_error rather than thrown).
ModelSummary summarize_model(const onnx::Model& model, const SessionOptions& options = {});

// Estimated floating-point operations of one run of a planned model (Session::model(), whose
// value_info carries every shape): 2 per multiply-add in Conv, ConvTranspose, MatMul and Gemm, and
// one per output element for every other node.
int64_t estimate_flops(const onnx::Model& planned);

}  // namespace detrq::runtime
