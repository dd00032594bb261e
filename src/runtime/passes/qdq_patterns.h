// The DequantizeLinear shapes the Q/DQ fusions (fuse_qdq_conv.cpp, fuse_qdq_matmul.cpp) accept around
// a Conv or MatMul: a per-tensor activation and a constant int8 weight with zero zero points.
#pragma once

#include "detrq/onnx/graph_editor.h"

namespace detrq::runtime::passes {

bool default_domain(const onnx::Node& n);
// The activation side: any non-constant q_x with one scale and one zero point, all initializers.
bool activation_dequantize(const onnx::GraphEditor& g, const onnx::Node& n);
// A MatMul weight: int8 [K, N], scale per tensor or per column (axis 1), zero point absent or all 0.
bool matmul_weight_dequantize(const onnx::GraphEditor& g, const onnx::Node& n);
// A 2-D Conv weight: int8 [O, C, kh, kw], scale per tensor or per output channel (axis 0), zero point 0.
bool conv_weight_dequantize(const onnx::GraphEditor& g, const onnx::Node& n);

// The DequantizeLinear nodes feeding inputs 0 and 1 of `node` when both fit `weight_ok` and neither
// tensor is kept; nullptr pair otherwise.
struct DequantizedOperands {
  const onnx::Node* activation = nullptr;
  const onnx::Node* weight = nullptr;
};
DequantizedOperands dequantized_operands(const onnx::GraphEditor& g, const onnx::Node& node,
                                         const std::set<std::string>& keep,
                                         bool (*weight_ok)(const onnx::GraphEditor&, const onnx::Node&));

// The inputs QMatMulF and QConvF start with: q_x, x_scale, x_zero_point ("" when absent), W, w_scale.
std::vector<std::string> quantized_inputs(const DequantizedOperands& operands);

}  // namespace detrq::runtime::passes
