// Operator fusion on the graph before planning: a MatMul by a constant weight followed by its bias Add,
// and optionally by the GELU that transformer MLPs spell as Div/Erf/Add/Mul/Mul, becomes one internal
// com.detrq FusedMatMul node whose kernel applies bias and activation to each output tile in cache.
#pragma once

#include <cstddef>
#include <set>
#include <string>

#include "detrq/onnx/model.h"

namespace detrq::runtime {

inline constexpr const char* kDetrqDomain = "com.detrq";

// Rewrites `graph` in place and returns the number of fused nodes. A tensor named in `keep` (one an
// observer must see) or a graph output is never fused away; nor is any tensor read by another node.
std::size_t fuse_matmul_epilogues(onnx::Graph& graph, const std::set<std::string>& keep);

}  // namespace detrq::runtime
