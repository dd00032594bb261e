// Registration of the built-in kernels, one function per operator family (internal to runtime).
#pragma once

#include "detrq/runtime/kernel.h"

namespace detrq::runtime::kernels {

// Arithmetic, comparisons, logic, Where, Cast/CastLike, unary math and activations, Clip, variadic
// Max/Min/Sum/Mean (basic_kernels.h lists one registration function per file).
void register_elementwise_kernels(KernelRegistry& registry);
// Shape, Reshape, Flatten, Squeeze, Unsqueeze, Concat, Split, Slice, Gather, GatherElements, ScatterND,
// Expand, Tile, Transpose, ConstantOfShape, Constant, Identity, CumSum, TopK, Range, Size.
void register_shape_kernels(KernelRegistry& registry);
// ReduceMax, ReduceMin, ReduceSum, ReduceMean, ReduceProd, ArgMax, ArgMin.
void register_reduction_kernels(KernelRegistry& registry);
// MatMul, Gemm, Conv, LayerNormalization, Softmax, GridSample, Resize, BatchNormalization,
// InstanceNormalization, MaxPool.
void register_compute_kernels(KernelRegistry& registry);
// QuantizeLinear, DequantizeLinear, and the int8 fast paths for Q/DQ patterns.
void register_quantization_kernels(KernelRegistry& registry);

}  // namespace detrq::runtime::kernels
