// An operand of a batched product read through a permutation of its axes: what the attention kernels
// (compute/matmul.cpp's AttentionSoftmax, quantization/qattention.cpp's QAttentionSoftmax) see of inputs
// and outputs whose Transposes their fusions absorbed (perm_q, perm_k, perm_v, perm_out), with the start
// of each matrix over the batch axes. Internal to the kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {

struct PermutedOperand {
  Shape shape;                   // logical (permuted) shape
  std::vector<int64_t> strides;  // of the logical axes, in elements of the stored tensor
  std::vector<int64_t> offsets;  // where each matrix starts, per flat batch index (batch_offsets)
  int64_t row_stride() const { return strides[strides.size() - 2]; }
  int64_t col_stride() const { return strides[strides.size() - 1]; }
  int64_t offset(int64_t batch) const { return offsets[static_cast<std::size_t>(batch)]; }
};

// Fails (naming the node and `what`) unless perm lists each of `rank` axes once.
inline void require_permutation(const onnx::Node& node, const std::vector<int64_t>& perm, std::size_t rank,
                                const std::string& what) {
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (perm.size() != rank || p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<std::size_t>(p)]) {
      fail_node(node, what + " " + std::to_string(rank) + " axes");
    }
    seen[static_cast<std::size_t>(p)] = true;
  }
}

// A stored input read as its Transpose by `perm` (empty: as it is).
inline PermutedOperand permuted_input(const onnx::Node& node, const Shape& stored, const std::vector<int64_t>& perm) {
  const std::vector<int64_t> dense = contiguous_strides(stored);
  if (perm.empty()) return PermutedOperand{stored, dense, {}};
  require_permutation(node, perm, stored.size(), "a perm attribute is not a permutation of the input's");
  PermutedOperand o;
  for (int64_t p : perm) {
    o.shape.push_back(stored[static_cast<std::size_t>(p)]);
    o.strides.push_back(dense[static_cast<std::size_t>(p)]);
  }
  return o;
}

// The output as the product sees it ([..., m, dv], logical) with the strides its axes have in the stored
// tensor, which is the logical one permuted by `perm` (empty: not permuted; the last axis stays last).
inline PermutedOperand permuted_output(const onnx::Node& node, const Shape& logical, const std::vector<int64_t>& perm) {
  if (perm.empty()) return PermutedOperand{logical, contiguous_strides(logical), {}};
  require_permutation(node, perm, logical.size(), "perm_out is not a permutation of the output's");
  if (perm.back() != static_cast<int64_t>(logical.size()) - 1) fail_node(node, "perm_out must keep the last axis last");
  PermutedOperand o{logical, std::vector<int64_t>(logical.size(), 1), {}};
  int64_t step = 1;
  for (std::size_t i = perm.size(); i-- > 0;) {  // axis perm[i] is the stored tensor's axis i
    o.strides[static_cast<std::size_t>(perm[i])] = step;
    step *= logical[static_cast<std::size_t>(perm[i])];
  }
  return o;
}

// The stored shape of a logical output permuted by `perm` (empty: the logical one).
inline Shape stored_shape(const Shape& logical, const std::vector<int64_t>& perm) {
  Shape stored = logical;
  for (std::size_t i = 0; i < perm.size(); ++i) stored[i] = logical[static_cast<std::size_t>(perm[i])];
  return stored;
}

// Start of each matrix of `o`: `count` flat indices over its batch axes, in row-major order (as
// matmul_geometry numbers them).
inline std::vector<int64_t> batch_offsets(const PermutedOperand& o, int64_t count) {
  const std::size_t batch_rank = o.shape.size() - 2;
  std::vector<int64_t> offsets(static_cast<std::size_t>(count), 0);
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t rem = flat, off = 0;
    for (std::size_t d = batch_rank; d-- > 0;) {
      off += (rem % o.shape[d]) * o.strides[d];
      rem /= o.shape[d];
    }
    offsets[static_cast<std::size_t>(flat)] = off;
  }
  return offsets;
}

}  // namespace detrq::runtime::kernels
