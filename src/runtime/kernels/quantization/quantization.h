// Factories of the quantization kernels, one per file beside this header (internal to runtime).
#pragma once

#include <memory>
#include <string>

#include "detrq/runtime/kernel.h"

namespace detrq::runtime::kernels {

std::unique_ptr<Kernel> make_quantize_linear(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_dequantize_linear(const onnx::Node& node, int opset);
// QMatMulF (com.detrq) on the best int8 GEMM path of the session's target, or on a chosen one (tests).
std::unique_ptr<Kernel> make_qmatmul_f(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_qconv_f(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_qattention_softmax(const onnx::Node& node, int opset);
enum class Int8Isa;
std::unique_ptr<Kernel> make_qmatmul_f_with_isa(const onnx::Node& node, int opset, Int8Isa isa);

// "QuantizeLinear 'name'" for messages (kept here so these kernels need nothing else of the onnx module).
std::string node_label(const onnx::Node& node);

// Shared by both: how a scale (and zero point) applies to a tensor. Per tensor when the scale has
// one element, else per axis: the tensor seen as [outer, channels, inner] with the scale along the middle.
struct QuantAxis {
  bool per_axis = false;
  int64_t outer = 1;
  int64_t channels = 1;
  int64_t inner = 1;
};
QuantAxis quant_axis(const onnx::Node& node, const TensorType& x, const TensorType& scale,
                     const TensorType* zero_point);

}  // namespace detrq::runtime::kernels
