// Q/DQ fusion: the graph rewrite the Session runs at load so that a MatMul or Conv between two
// DequantizeLinear nodes (activation, constant int8 weight) runs in int8 arithmetic (internal to runtime).
#pragma once

#include <cstddef>
#include <set>
#include <string>

#include "detrq/onnx/model.h"

namespace detrq::runtime {

// Domain of the operators only detrq's own plans contain (fusion.h's kDetrqDomain too); a model that
// uses it must carry kInternalPlanKey in its metadata, which fuse_qdq writes into every model the
// Session plans, so hand-written ONNX files cannot.
inline constexpr const char* kInternalDomain = "com.detrq";
inline constexpr const char* kInternalPlanKey = "detrq.internal_ops";

struct QdqFusionSummary {
  std::size_t matmuls = 0;  // MatMul nodes replaced by com.detrq QMatMulF
  std::size_t convs = 0;    // Conv nodes replaced by com.detrq QConvF
};

// Throws kUnsupported when the model uses kInternalDomain without the plan key. Then replaces every
//   DequantizeLinear(q_x, x_scale[, x_zero_point]) -> MatMul <- DequantizeLinear(W int8 [K, N], w_scale)
// with per-tensor x_scale/x_zero_point and w_scale per tensor or per column (axis 1), weight zero point
// 0, all of them initializers, by QMatMulF(q_x, x_scale, x_zero_point, W, w_scale) producing the
// MatMul's output under the MatMul's name. Likewise a 2-D Conv (group 1, no auto_pad, constant or no
// bias) on DequantizeLinear(q_x) and DequantizeLinear(W int8 [O, C, kh, kw], scale per tensor or axis 0)
// becomes QConvF(q_x, x_scale, x_zero_point, W, w_scale[, bias]). The DequantizeLinear nodes stay where anything else (a
// node or a graph output) reads their outputs, so every tensor that still exists keeps its value;
// those that nothing reads any more are removed; no pattern whose DequantizeLinear output is in `keep`
// (tensors an observer must see) is fused. With `fuse` false it only checks the domain and marks the plan.
QdqFusionSummary fuse_qdq(onnx::Model& model, bool fuse = true, const std::set<std::string>& keep = {});

}  // namespace detrq::runtime
