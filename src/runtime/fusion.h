// Operator fusion on the graph before planning, into internal com.detrq nodes: a MatMul by a constant
// weight with its bias Add (then the GELU that transformer MLPs spell as Div/Erf/Add/Mul/Mul, a
// LayerScale Mul by a constant [N] and a residual Add of a computed tensor, each where present), and the
// MatMul/Softmax/MatMul of attention.
#pragma once

#include <cstddef>
#include <set>
#include <string>

#include "detrq/onnx/model.h"

namespace detrq::runtime {

inline constexpr const char* kDetrqDomain = "com.detrq";

// FusedMatMul's inputs: A, B, bias, [scale], [residual] (an omitted scale is an empty name). Rewrites
// `graph` in place and returns the number of fused nodes. A tensor named in `keep` (one an
// observer must see) or a graph output is never fused away; nor is any tensor read by another node.
std::size_t fuse_matmul_epilogues(onnx::Graph& graph, const std::set<std::string>& keep);

// MatMul(Q, K) -> Softmax over the last axis -> MatMul(., V), the attention of transformer exports,
// becomes one com.detrq AttentionSoftmax node (inputs Q, K, V): its kernel computes the scores of a
// block of rows, their softmax and their product with V while the block is in cache, so the score
// tensor (heads x tokens x tokens) never goes to memory. A Mul of Q or K by a scalar constant is absorbed
// into the node's `scale`. `softmax_opset` decides Softmax's default
// axis. Same rules for `keep` as above.
std::size_t fuse_attention(onnx::Graph& graph, const std::set<std::string>& keep, int64_t softmax_opset);

}  // namespace detrq::runtime
