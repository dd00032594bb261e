// Q/DQ attention: the pass after fuse-qdq-matmul that turns attention whose probabilities are quantized into
// one com.detrq AttentionSoftmax that quantizes them on the fly (internal to runtime).
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "detrq/onnx/model.h"

namespace detrq::runtime {

// Rewrites MatMul(Q, K) -> Softmax (last axis) -> QuantizeLinear (one scale and int8/uint8 zero point,
// initializers) -> DequantizeLinear (the same scale and zero point) -> MatMul(., V), Q, K and V
// computed tensors (usually DequantizeLinear outputs), into AttentionSoftmax(Q, K, V) with attributes
// prob_scale, prob_zero_point and prob_signed: the kernel rounds each probability to the code grid
// exactly as the QuantizeLinear -> DequantizeLinear pair did, block by block, so that the score and
// probability tensors never reach memory. A Transpose reading the output that keeps the last axis is
// absorbed (perm_out) as fuse_attention does. Where Q, K and V are themselves DequantizeLinear outputs
// (per tensor; K and V int8 with zero point 0), those are absorbed too and the node is QAttentionSoftmax
// (q, q_scale, q_zp, k, k_scale, k_zp, v, v_scale, v_zp): both products in int8 arithmetic, the
// probabilities quantized to codes. Returns the attention blocks rewritten.
std::size_t fuse_qdq_attention(onnx::Graph& graph, const std::set<std::string>& keep, int64_t softmax_opset);

}  // namespace detrq::runtime
