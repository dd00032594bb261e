// Pre-quantizing weights for the CPU engine: a QuantizeLinear whose input, scale and zero point are all
// constants is computed once at build time and replaced by its int8/uint8 result, so the engine stores
// weights at a quarter of their float size and never quantizes them again at run time.
#pragma once

#include <cstddef>

#include "detrq/onnx/model.h"

namespace detrq::engine::cpu {

struct PrequantizeSummary {
  std::size_t folded = 0;         // QuantizeLinear nodes replaced by initializers
  std::size_t bytes_before = 0;   // float weights they read (removed when nothing else uses them)
  std::size_t bytes_after = 0;    // quantized weights now stored
};

// Folds QuantizeLinear(constant float32, constant scale, [constant zero point]) with per-tensor or
// per-axis scales and int8/uint8 zero points, as ONNX defines it (round half to even, saturate). Other
// QuantizeLinear nodes (activations, float8, blocked) are left to the runtime.
PrequantizeSummary prequantize_weights(onnx::Model& model);

}  // namespace detrq::engine::cpu
