// Float to int8/uint8 quantization of a run of values (ONNX QuantizeLinear's arithmetic, per tensor) and
// the fake quantization (quantize, then dequantize) of one, vectorized where the CPU allows (internal to
// runtime): shared by QuantizeLinear, the int8 GEMM's requantizing epilogue and Q/DQ attention.
#pragma once

#include <cstdint>

#include "detrq/runtime/cpu_target.h"

namespace detrq::runtime::kernels {

// y[i] = saturate(rint(x[i] / scale) + zero_point) (division as onnxruntime does, half to even; NaN
// gives the zero point), for int8 (is_signed) or uint8 outputs.
// Each takes the target whose instruction sets it may use (AVX-512 where target.avx512f(), else AVX2).
void quantize_run(const float* x, void* y, bool is_signed, int64_t n, float scale, int32_t zero_point,
                  const CpuTarget& target);

// y[i] = saturate(rint(x[i] * factor) + zero_point): quantize_run by one product with the reciprocal of
// the scale instead of a division (Q/DQ attention's probabilities, a pass over every score); the code
// differs only where x / scale lies within float rounding of a half-way point between two codes.
void quantize_run_by_product(const float* x, void* y, bool is_signed, int64_t n, float factor, int32_t zero_point,
                             const CpuTarget& target);

// x[i] = (saturate(rint(x[i] * (pre / scale)) + zero_point) - zero_point) * scale, in place: what
// QuantizeLinear -> DequantizeLinear gives for x * pre, with one product instead of a product and a
// division (Q/DQ attention's probabilities, a pass over every score): the code differs only where x * pre /
// scale lies within float rounding of a half-way point between two codes.
void fake_quantize_run(float* x, bool is_signed, int64_t n, float pre, float scale, int32_t zero_point,
                       const CpuTarget& target);

}  // namespace detrq::runtime::kernels
