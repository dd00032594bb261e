// Q/DQ insertion: rewrites an FP32 ONNX model into the explicitly quantized form TensorRT 10/11 and
// onnxruntime take: per-tensor QuantizeLinear/DequantizeLinear on the activation inputs of the
// Conv/MatMul/Gemm nodes the precision policy quantizes, and their weights stored as int8 per output
// channel followed by DequantizeLinear.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "detrq/onnx/model.h"
#include "detrq/quant/calibration_table.h"
#include "detrq/quant/precision_policy.h"

namespace detrq::quant {

struct QdqSummary {
  std::vector<NodeDecision> decisions;  // one per Conv/MatMul/Gemm, in graph order
  int quantized_nodes = 0;
  int quantized_activations = 0;  // Q/DQ pairs inserted
  int quantized_weights = 0;      // int8 initializers written
  int quantized_residuals = 0;    // residual Add inputs given Q/DQ (PrecisionPolicy::residual_adds)
};

// The output-channel axis of a weight for per-channel quantization: Conv [O, I, kh, kw] -> 0,
// Gemm B -> 0 with transB else 1, MatMul B [.., K, N] -> last.
int weight_channel_axis(const onnx::Node& node, int input_index, const core::Shape& weight_shape);

// Symmetric int8 per-channel weight quantization, narrow range [-127, 127] as TensorRT expects.
// Returns the int8 tensor and fills one scale per channel (channels of all-zero weights get scale 1).
core::Tensor quantize_weight_per_channel(const core::Tensor& weight, int axis, std::vector<float>& scales);

// The tensors calibration must observe for `policy`: the graph inputs, and the activation inputs and
// outputs of every Conv/MatMul/Gemm the policy would quantize (outputs too, so a TensorRT cache lets
// consecutive INT8 layers chain), and with policy.residual_adds the skip inputs of residual Adds. Watching only these keeps the observer off the large attention
// tensors that stay float anyway.
std::set<std::string> tensors_to_calibrate(const onnx::Model& model, const PrecisionPolicy& policy);

// Rewrites `model` in place. Activation scales come from `table` (tensors it marks unquantized keep
// their consumers in float, with the reason in the decision). Raises the default opset to >= 13.
QdqSummary insert_qdq(onnx::Model& model, const CalibrationTable& table, const PrecisionPolicy& policy);

}  // namespace detrq::quant
