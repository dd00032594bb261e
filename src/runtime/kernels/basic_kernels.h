// Registration functions of the elementwise, shape and reduction kernel files (one per operator family),
// called from register_elementwise.cpp, register_shape.cpp and register_reduction.cpp.
#pragma once

#include "detrq/runtime/kernel.h"

namespace detrq::runtime::kernels {

// elementwise
void register_binary_kernels(KernelRegistry& registry);  // Add Sub Mul Div Mod Pow, comparisons, logic, Max Min Sum Mean
void register_unary_kernels(KernelRegistry& registry);   // Cos Sin Exp Erf Log Sqrt Neg Relu Sigmoid Not ...
void register_where_kernel(KernelRegistry& registry);
void register_cast_kernel(KernelRegistry& registry);  // Cast CastLike
void register_clip_kernel(KernelRegistry& registry);
void register_parametric_activation_kernels(KernelRegistry& registry);  // LeakyRelu Elu HardSigmoid IsNaN IsInf

// shape
void register_view_kernels(KernelRegistry& registry);  // Reshape Flatten Squeeze Unsqueeze Identity
void register_shape_kernel(KernelRegistry& registry);  // Shape Size
void register_constant_kernels(KernelRegistry& registry);  // Constant ConstantOfShape
void register_concat_kernel(KernelRegistry& registry);
void register_split_kernel(KernelRegistry& registry);
void register_slice_kernel(KernelRegistry& registry);
void register_gather_kernels(KernelRegistry& registry);  // Gather GatherElements
void register_scatter_nd_kernel(KernelRegistry& registry);
void register_expand_tile_kernels(KernelRegistry& registry);
void register_transpose_kernel(KernelRegistry& registry);
void register_cumsum_kernel(KernelRegistry& registry);
void register_topk_kernel(KernelRegistry& registry);
void register_range_kernel(KernelRegistry& registry);

// reduction
void register_reduce_kernels(KernelRegistry& registry);  // ReduceMax ReduceSum ReduceMean ...
void register_arg_reduce_kernels(KernelRegistry& registry);  // ArgMax ArgMin

}  // namespace detrq::runtime::kernels
