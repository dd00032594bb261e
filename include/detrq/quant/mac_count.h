// Multiply-adds of the Conv/MatMul/Gemm nodes of a model, and how many of them run in INT8: the
// measure of how much a quantization policy buys (a layer left float runs in FP16/FP32 on TensorRT).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "detrq/onnx/model.h"
#include "detrq/quant/precision_policy.h"
#include "detrq/runtime/session.h"

namespace detrq::quant {

struct NodeMacs {
  std::string node;
  std::string op_type;
  int64_t macs = 0;
  bool int8 = false;  // both data inputs quantized
};

struct MacCount {
  std::vector<NodeMacs> nodes;  // Conv/MatMul/Gemm in graph order
  int64_t total = 0;
  int64_t int8 = 0;
  double int8_share() const { return total > 0 ? static_cast<double>(int8) / static_cast<double>(total) : 0.0; }
};

// Multiply-adds per Conv/MatMul/Gemm node name of `model`, from the shapes a Session plan infers
// (without fusion, so every tensor keeps its shape). Nodes whose shapes are unknown count 0.
std::map<std::string, int64_t> node_macs(const onnx::Model& model, const runtime::SessionOptions& options = {});

// The count for the decisions of a precision policy (by node name) over `macs`.
MacCount count_macs(const std::map<std::string, int64_t>& macs, const std::vector<NodeDecision>& decisions);

// The count for a Q/DQ model as it is: a node is INT8 when its two data inputs each come from a
// DequantizeLinear (as TensorRT and onnxruntime fuse them).
MacCount count_qdq_macs(const onnx::Model& qdq_model, const runtime::SessionOptions& options = {});

}  // namespace detrq::quant
