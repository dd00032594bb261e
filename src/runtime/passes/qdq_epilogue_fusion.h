// Requantizing epilogues: the pass after fuse-qdq-matmul that folds what follows a QMatMulF into it, so int8
// stays int8 from layer to layer (internal to runtime).
#pragma once

#include <cstddef>
#include <set>
#include <string>

#include "detrq/onnx/model.h"

namespace detrq::runtime {

// For every com.detrq QMatMulF with a constant weight [K > 0, N], absorbs the chain its product feeds,
// each step optional, in this order: Add(constant bias [N]), the erf GELU (Div by sqrt 2, Erf, Add 1,
// Mul, Mul 0.5), Mul(constant [N]), Add(a computed residual), QuantizeLinear (one scale, one int8/uint8
// zero point, both initializers). The QMatMulF then writes the chain's last tensor: floats, or the
// QuantizeLinear's codes. Only tensors one node reads and that are neither graph outputs nor in `keep`
// disappear. Returns the QMatMulF nodes that absorbed something.
std::size_t fuse_qmatmul_epilogues(onnx::Graph& graph, const std::set<std::string>& keep);

}  // namespace detrq::runtime
