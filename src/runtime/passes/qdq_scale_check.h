// The check of every Q/DQ scale a model stores, run when the Session loads it (internal to runtime).
#pragma once

#include "detrq/onnx/model.h"

namespace detrq::runtime {

// Throws kInvalid naming the node when a QuantizeLinear or DequantizeLinear has a constant float32
// scale with a zero, NaN or infinite value: such a file cannot be executed faithfully (the division by
// the scale has no meaning), and silently running it would give garbage.
void check_qdq_scales(const onnx::Graph& graph);

}  // namespace detrq::runtime
