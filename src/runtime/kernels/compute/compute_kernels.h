// Factories of the compute kernels, one per operator file; register_compute.cpp adds them to the registry.
#pragma once

#include <memory>

#include "detrq/runtime/kernel.h"

namespace detrq::runtime::kernels {

std::unique_ptr<Kernel> make_matmul_kernel(const onnx::Node& node, int opset);
// com.detrq FusedMatMul: MatMul + bias + activation (runtime/passes/fuse_matmul_epilogue.cpp makes these nodes).
std::unique_ptr<Kernel> make_fused_matmul_kernel(const onnx::Node& node, int opset);
// com.detrq AttentionSoftmax: MatMul + Softmax(last axis) + MatMul.
std::unique_ptr<Kernel> make_attention_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_gemm_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_conv_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_layer_normalization_kernel(const onnx::Node& node, int opset);
// com.detrq QLayerNormalization: LayerNormalization then a per-tensor QuantizeLinear, writing the codes.
std::unique_ptr<Kernel> make_qlayer_normalization_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_softmax_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_grid_sample_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_resize_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_batch_normalization_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_instance_normalization_kernel(const onnx::Node& node, int opset);
std::unique_ptr<Kernel> make_max_pool_kernel(const onnx::Node& node, int opset);

}  // namespace detrq::runtime::kernels
