// Shared plumbing of the basic kernels: attributes, dtype checks, axes, constant inputs, broadcasting.
#include "runtime/kernels/kernel_support.h"

#include <algorithm>

namespace detrq::runtime::kernels {

namespace {
const char* kind_name(onnx::Attribute::Kind kind) {
  switch (kind) {
    case onnx::Attribute::Kind::kFloat: return "float";
    case onnx::Attribute::Kind::kInt: return "int";
    case onnx::Attribute::Kind::kString: return "string";
    case onnx::Attribute::Kind::kTensor: return "tensor";
    case onnx::Attribute::Kind::kFloats: return "floats";
    case onnx::Attribute::Kind::kInts: return "ints";
    case onnx::Attribute::Kind::kStrings: return "strings";
  }
  return "unknown";
}
}  // namespace

const onnx::Attribute* find_attr(const onnx::Node& node, const std::string& key, onnx::Attribute::Kind kind) {
  auto it = node.attributes.find(key);
  if (it == node.attributes.end()) return nullptr;
  if (it->second.kind != kind) {
    throw_invalid(node.describe(),
                  "attribute '" + key + "' is " + kind_name(it->second.kind) + ", expected " + kind_name(kind),
                  "the model does not follow the operator's specification");
  }
  return &it->second;
}

void require_dtype(const onnx::Node& node, const char* what, DType dtype, const std::vector<DType>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), dtype) != allowed.end()) return;
  std::string list;
  for (DType d : allowed) list += std::string(list.empty() ? "" : ", ") + core::dtype_name(d);
  throw_invalid(node.describe(), std::string(what) + " has dtype " + core::dtype_name(dtype) + ", expected one of " + list,
                "check the model's types against the operator's specification");
}

const std::vector<DType>& numeric_dtypes() {
  static const std::vector<DType> k = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
                                       DType::kInt8,    DType::kUInt8,   DType::kInt16,   DType::kUInt16,
                                       DType::kInt32,   DType::kUInt32,  DType::kInt64,   DType::kUInt64};
  return k;
}

const std::vector<DType>& float_dtypes() {
  static const std::vector<DType> k = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  return k;
}

int64_t normalize_axis(const onnx::Node& node, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank || rank == 0) {
    throw_invalid(node.describe(), "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> read_int_values(const onnx::Node& node, const Tensor& t, const char* what) {
  std::vector<int64_t> out(static_cast<std::size_t>(t.numel()));
  if (t.dtype() == DType::kInt64) {
    std::copy_n(cdata<int64_t>(t), out.size(), out.begin());
  } else if (t.dtype() == DType::kInt32) {
    std::copy_n(cdata<int32_t>(t), out.size(), out.begin());
  } else {
    throw_invalid(node.describe(), std::string(what) + " must be int64 or int32, not " + core::dtype_name(t.dtype()));
  }
  return out;
}

const TensorType& require_input(const InferContext& ctx, std::size_t i) {
  if (!ctx.input_present(i)) {
    throw_invalid(ctx.node.describe(), "input " + std::to_string(i) + " is missing", "the operator requires it");
  }
  return ctx.input_types[i];
}

const Tensor& require_constant(const InferContext& ctx, std::size_t i, const char* what) {
  require_input(ctx, i);
  if (i >= ctx.input_values.size() || ctx.input_values[i] == nullptr) {
    throw_unsupported(ctx.node.describe(), std::string(what) + " (input " + std::to_string(i) + ") is not a constant",
                      "detrq plans static shapes; export the model with constant " + std::string(what));
  }
  return *ctx.input_values[i];
}

void require_input_count(const InferContext& ctx, std::size_t min, std::size_t max) {
  const std::size_t n = ctx.input_types.size();
  if (n < min || n > max) {
    throw_invalid(ctx.node.describe(), "has " + std::to_string(n) + " inputs, expected " + std::to_string(min) +
                                           (min == max ? "" : " to " + std::to_string(max)));
  }
  for (std::size_t i = 0; i < min; ++i) require_input(ctx, i);
}

Shape broadcast_shapes(const onnx::Node& node, const std::vector<Shape>& shapes) {
  std::size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (std::size_t d = 0; d < rank; ++d) {
    bool set = false;
    for (const Shape& s : shapes) {
      const std::size_t pad = rank - s.size();
      if (d < pad) continue;
      const int64_t dim = s[d - pad];
      if (dim == 1) continue;
      if (!set || out[d] == dim) {
        out[d] = dim;
        set = true;
        continue;
      }
      std::string list;
      for (const Shape& t : shapes) list += (list.empty() ? "" : " and ") + core::shape_to_string(t);
      throw_invalid(node.describe(), "cannot broadcast shapes " + list,
                    "each dimension must match or be 1 (numpy broadcasting)");
    }
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

BroadcastPlan::BroadcastPlan(const Shape& out, const std::vector<Shape>& inputs) : n_inputs_(inputs.size()) {
  const std::size_t rank = out.size();
  // Per input, per output dim: the element stride, 0 where the input is broadcast along it.
  std::vector<std::vector<int64_t>> strides(n_inputs_, std::vector<int64_t>(rank, 0));
  for (std::size_t k = 0; k < n_inputs_; ++k) {
    const Shape& s = inputs[k];
    const std::size_t pad = rank - s.size();
    int64_t stride = 1;
    for (std::size_t d = rank; d-- > pad;) {
      const int64_t dim = s[d - pad];
      strides[k][d] = dim == 1 ? 0 : stride;
      stride *= dim;
    }
  }
  // Merge adjacent dims (dropping size-1 ones) where every input continues contiguously.
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> merged(n_inputs_);
  for (std::size_t d = 0; d < rank; ++d) {
    if (out[d] == 1) continue;
    bool can_merge = !dims.empty();
    for (std::size_t k = 0; k < n_inputs_ && can_merge; ++k) {
      can_merge = merged[k].back() == strides[k][d] * out[d];
    }
    if (can_merge) {
      dims.back() *= out[d];
      for (std::size_t k = 0; k < n_inputs_; ++k) merged[k].back() = strides[k][d];
    } else {
      dims.push_back(out[d]);
      for (std::size_t k = 0; k < n_inputs_; ++k) merged[k].push_back(strides[k][d]);
    }
  }
  inner_step_.assign(n_inputs_, 0);
  if (dims.empty()) return;  // a single element
  inner_ = dims.back();
  for (std::size_t k = 0; k < n_inputs_; ++k) {
    inner_step_[k] = merged[k].back();
    // An inner stride that is neither 0 nor 1 cannot happen: the innermost merged dim is contiguous.
    merged[k].pop_back();
  }
  dims.pop_back();
  outer_dims_ = dims;
  outer_strides_ = merged;
  for (int64_t d : dims) rows_ *= d;
}

void BroadcastPlan::row_offsets(int64_t r, int64_t* offsets) const {
  for (std::size_t k = 0; k < n_inputs_; ++k) offsets[k] = 0;
  for (std::size_t d = outer_dims_.size(); d-- > 0;) {
    const int64_t idx = r % outer_dims_[d];
    r /= outer_dims_[d];
    for (std::size_t k = 0; k < n_inputs_; ++k) offsets[k] += idx * outer_strides_[k][d];
  }
}

}  // namespace detrq::runtime::kernels
