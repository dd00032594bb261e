// Folding QuantizeLinear of constant weights into their int8/uint8 codes, the one loop both the
// Session's fold-weight-quantization pass and the CPU engine's weight prequantization use (the rounding
// itself is quantize_constant, detrq/runtime/quantize.h, shared with the QuantizeLinear kernel).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "detrq/onnx/graph_editor.h"

namespace detrq::runtime::passes {

// QuantizeLinear(constant float32 x, constant float32 scale, [constant int8/uint8 zero point]) with a
// per-tensor or per-axis scale, no blocks and the default output type: what can be computed now.
struct ConstantQuantize {
  const core::Tensor* x = nullptr;
  const core::Tensor* scale = nullptr;
  const core::Tensor* zero_point = nullptr;  // nullptr when absent
  int64_t axis = 1;                          // in [0, rank) when the scale has several values
};

// Each folded QuantizeLinear: its output (now an initializer holding the codes) and its float input.
struct FoldedQuantize {
  std::string output;
  std::string source;
};

// Replaces every QuantizeLinear node that fits ConstantQuantize (initializers only, no Identity hops)
// and that `accept` agrees to by an initializer of its codes under the node's output name, rounding
// half to even whatever the caller's floating-point rounding mode.
std::vector<FoldedQuantize> fold_constant_quantize(
    onnx::GraphEditor& g, const std::function<bool(const onnx::Node&, const ConstantQuantize&)>& accept);

}  // namespace detrq::runtime::passes
