// QuantizeLinear of a constant, computed ahead of a run exactly as the QuantizeLinear kernel computes it
// at run time: the Session's Q/DQ fusion folds weights written as QuantizeLinear(float initializer) with
// it, and the CPU engine pre-quantizes weights with it, so a plan, an engine and a plain run agree.
#pragma once

#include <cstdint>

#include "detrq/core/tensor.h"

namespace detrq::runtime {

// y = saturate(round_half_to_even(x / scale) + zero_point) (NaN gives the zero point), int8 when the zero
// point is int8, else uint8 (also without a zero point, as ONNX defines). x and scale are float32; the
// scale (and zero point, of the same size) has one value, or one per index of x's axis `axis` (in
// [0, rank)). Throws std::invalid_argument when the operands do not fit that.
core::Tensor quantize_constant(const core::Tensor& x, const core::Tensor& scale, const core::Tensor* zero_point,
                               int64_t axis);

}  // namespace detrq::runtime
