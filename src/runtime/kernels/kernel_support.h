// The one header of plumbing every kernel shares: errors that name the node, attribute access, dtype
// dispatch (with half types), axis handling, constant-input reading, multidirectional broadcasting,
// and the window geometry (auto_pad arithmetic) of Conv and the pooling operators.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/core/tensor.h"
#include "detrq/runtime/kernel.h"

namespace detrq::runtime::kernels {

// Storage types for the 16-bit floats; arithmetic happens in float.
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

// The attribute `key` when present, refusing one of another kind (for attributes such as Constant's
// value forms, whose kind is part of their meaning); nullptr when absent.
const onnx::Attribute* find_attr(const onnx::Node& node, const std::string& key, onnx::Attribute::Kind kind);

// Type views of a tensor's storage (Half/BFloat16 included, which Tensor::data<T> does not know).
template <typename T>
const T* cdata(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <typename T>
T* mdata(Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

template <typename T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) with the C++ storage type of `dtype`; unsupported dtypes are refused naming the node.
template <typename F>
decltype(auto) dispatch_all(DType dtype, const onnx::Node& node, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f(Tag<float>{});
    case DType::kFloat64: return f(Tag<double>{});
    case DType::kFloat16: return f(Tag<Half>{});
    case DType::kBFloat16: return f(Tag<BFloat16>{});
    case DType::kInt8: return f(Tag<int8_t>{});
    case DType::kUInt8: return f(Tag<uint8_t>{});
    case DType::kInt16: return f(Tag<int16_t>{});
    case DType::kUInt16: return f(Tag<uint16_t>{});
    case DType::kInt32: return f(Tag<int32_t>{});
    case DType::kUInt32: return f(Tag<uint32_t>{});
    case DType::kInt64: return f(Tag<int64_t>{});
    case DType::kUInt64: return f(Tag<uint64_t>{});
    case DType::kBool: return f(Tag<bool>{});
    default: break;
  }
  throw_unsupported(node.describe(), std::string("dtype ") + core::dtype_name(dtype) + " is not supported");
}

// Data movement only cares about the element size.
template <typename F>
decltype(auto) dispatch_by_size(DType dtype, const onnx::Node& node, F&& f) {
  switch (core::dtype_size(dtype)) {
    case 1: return f(Tag<uint8_t>{});
    case 2: return f(Tag<uint16_t>{});
    case 4: return f(Tag<uint32_t>{});
    case 8: return f(Tag<uint64_t>{});
    default: break;
  }
  throw_unsupported(node.describe(), std::string("dtype ") + core::dtype_name(dtype) + " is not supported");
}

template <typename T>
inline constexpr bool kIsHalfType = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// The type arithmetic on T is done in: float for the half types, T otherwise.
template <typename T>
using ComputeType = std::conditional_t<kIsHalfType<T>, float, T>;

template <typename T>
inline ComputeType<T> load(T v) {
  if constexpr (std::is_same_v<T, Half>) {
    return core::half_to_float(v.bits);
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return core::bfloat16_to_float(v.bits);
  } else {
    return v;
  }
}
template <typename T, typename C>
inline T store(C v) {
  if constexpr (std::is_same_v<T, Half>) {
    return Half{core::float_to_half(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return BFloat16{core::float_to_bfloat16(static_cast<float>(v))};
  } else {
    return static_cast<T>(v);
  }
}

// Refuses a dtype outside `allowed`, naming the node and input.
void require_dtype(const onnx::Node& node, const char* what, DType dtype, const std::vector<DType>& allowed);
// The numeric dtypes ONNX allows for arithmetic, and the float-only subset.
const std::vector<DType>& numeric_dtypes();
const std::vector<DType>& float_dtypes();

// Resolves a possibly negative axis against `rank` into [0, rank), refusing out-of-range values naming
// the node.
int64_t normalize_axis(const onnx::Node& node, int64_t axis, int64_t rank);

// Values of a constant int32/int64 tensor (an axes, shape, starts... input) as int64.
std::vector<int64_t> read_int_values(const onnx::Node& node, const Tensor& t, const char* what);
// The constant value of input `i`; refuses a non-constant one, since the output shape depends on it.
const Tensor& require_constant(const InferContext& ctx, std::size_t i, const char* what);
// Input i's type, refusing an omitted input.
const TensorType& require_input(const InferContext& ctx, std::size_t i);
void require_input_count(const InferContext& ctx, std::size_t min, std::size_t max);

// Numpy-style multidirectional broadcast of several shapes; refuses incompatible ones naming the node.
Shape broadcast_shapes(const onnx::Node& node, const std::vector<Shape>& shapes);

// Row-major strides (in elements) of `shape`.
std::vector<int64_t> contiguous_strides(const Shape& shape);

// A kernel's scratch (Kernel::scratch_bytes, RunContext::scratch) as consecutive 64-byte aligned parts.
// The same sequence of take() calls sizes it (no base: bytes() is the total) and carves it at run time,
// so the two cannot disagree.
class ScratchLayout {
 public:
  explicit ScratchLayout(std::byte* base = nullptr) : base_(base) {}
  explicit ScratchLayout(std::span<std::byte> scratch) : base_(scratch.data()), limit_(scratch.size()) {}
  template <typename T>
  T* take(std::size_t count) {
    std::byte* at = base_ ? base_ + used_ : nullptr;
    used_ += (count * sizeof(T) + 63) / 64 * 64;
    DETRQ_ASSERT(!base_ || used_ <= limit_, "kernel scratch carved beyond what scratch_bytes() planned");
    return reinterpret_cast<T*>(at);
  }
  std::size_t bytes() const { return used_; }

 private:
  std::byte* base_;
  std::size_t limit_ = static_cast<std::size_t>(-1);
  std::size_t used_ = 0;
};

// Up to kMaxDims int64 values on the stack: per-run index arithmetic over a tensor's axes without
// allocating (an input of higher rank is refused where it is planned).
inline constexpr std::size_t kMaxDims = 16;
class DimArray {
 public:
  DimArray() = default;
  explicit DimArray(std::size_t n, int64_t value = 0) {
    DETRQ_ASSERT(n <= kMaxDims, "more axes than kernels index on the stack");
    n_ = n;
    std::fill_n(v_, n, value);
  }
  void push_back(int64_t x) {
    DETRQ_ASSERT(n_ < kMaxDims, "more axes than kernels index on the stack");
    v_[n_++] = x;
  }
  void pop_back() { --n_; }
  int64_t& back() { return v_[n_ - 1]; }
  int64_t& operator[](std::size_t i) { return v_[i]; }
  int64_t operator[](std::size_t i) const { return v_[i]; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t* begin() { return v_; }
  int64_t* end() { return v_ + n_; }
  const int64_t* begin() const { return v_; }
  const int64_t* end() const { return v_ + n_; }

 private:
  int64_t v_[kMaxDims] = {};
  std::size_t n_ = 0;
};

// A broadcast loop nest, simplified: the output is split into rows of `inner` elements; within a row,
// input k advances by inner_step[k] (0 or 1) per element, and row r starts at row_offset(k, r).
// Adjacent dimensions with the same broadcast pattern are merged, so most real cases become one or two
// dimensions.
class BroadcastPlan {
 public:
  BroadcastPlan(const Shape& out, const std::vector<Shape>& inputs);
  int64_t rows() const { return rows_; }
  int64_t inner() const { return inner_; }
  int64_t inner_step(std::size_t k) const { return inner_step_[k]; }
  // Element offsets of each input at the start of row `r` (computed by walking the outer dims).
  void row_offsets(int64_t r, int64_t* offsets) const;

 private:
  std::size_t n_inputs_ = 0;
  int64_t rows_ = 1;
  int64_t inner_ = 1;
  std::vector<int64_t> inner_step_;
  std::vector<int64_t> outer_dims_;                   // merged outer dims, slowest first
  std::vector<std::vector<int64_t>> outer_strides_;  // per input, per outer dim
};

using core::shape_numel;
using core::shape_to_string;

[[noreturn]] inline void fail_node(const onnx::Node& node, const std::string& what, const std::string& hint = {}) {
  throw_invalid(node.describe(), what, hint);
}
[[noreturn]] inline void unsupported_node(const onnx::Node& node, const std::string& what,
                                          const std::string& hint = {}) {
  throw_unsupported(node.describe(), what, hint);
}

inline int64_t product(const Shape& shape, std::size_t begin, std::size_t end) {
  int64_t p = 1;
  for (std::size_t i = begin; i < end && i < shape.size(); ++i) p *= shape[i];
  return p;
}

inline void require_inputs(const InferContext& ctx, std::size_t min_count) {
  for (std::size_t i = 0; i < min_count; ++i) {
    if (!ctx.input_present(i)) fail_node(ctx.node, "input " + std::to_string(i) + " is missing");
  }
}

inline void require_dtype(const onnx::Node& node, const TensorType& t, std::initializer_list<DType> allowed,
                          const std::string& what) {
  for (DType d : allowed) {
    if (t.dtype == d) return;
  }
  std::string names;
  for (DType d : allowed) names += std::string(names.empty() ? "" : ", ") + core::dtype_name(d);
  unsupported_node(node, what + " has dtype " + core::dtype_name(t.dtype), "supported: " + names);
}

// Spatial geometry of a sliding-window operator (Conv, MaxPool) for one spatial axis.
struct WindowAxis {
  int64_t in = 0, kernel = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0, out = 0;
};

// Resolves kernel/stride/dilation/pads/auto_pad into per-axis geometry (ONNX's formulas, with
// PyTorch's rule that a ceil_mode window may not start inside the end padding).
inline std::vector<WindowAxis> window_geometry(const onnx::Node& node, const Shape& spatial_in,
                                               const std::vector<int64_t>& kernel, bool ceil_mode) {
  const std::size_t n = spatial_in.size();
  if (kernel.size() != n) {
    fail_node(node, "kernel_shape has " + std::to_string(kernel.size()) + " values for " + std::to_string(n) +
                        " spatial dimensions");
  }
  std::vector<int64_t> strides = node.attr_ints("strides", std::vector<int64_t>(n, 1));
  std::vector<int64_t> dilations = node.attr_ints("dilations", std::vector<int64_t>(n, 1));
  std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * n, 0));
  if (strides.size() != n || dilations.size() != n || pads.size() != 2 * n) {
    fail_node(node, "strides, dilations or pads do not match the " + std::to_string(n) + " spatial dimensions");
  }
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  std::vector<WindowAxis> axes(n);
  for (std::size_t i = 0; i < n; ++i) {
    WindowAxis& a = axes[i];
    a.in = spatial_in[i];
    a.kernel = kernel[i];
    a.stride = strides[i];
    a.dilation = dilations[i];
    if (a.kernel < 1 || a.stride < 1 || a.dilation < 1) fail_node(node, "kernel, strides and dilations must be >= 1");
    const int64_t extent = (a.kernel - 1) * a.dilation + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      a.out = (a.in + a.stride - 1) / a.stride;
      const int64_t total = std::max<int64_t>(0, (a.out - 1) * a.stride + extent - a.in);
      a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      a.pad_end = total - a.pad_begin;
    } else if (auto_pad == "VALID") {
      a.out = a.in >= extent ? (a.in - extent) / a.stride + 1 : 0;
    } else if (auto_pad == "NOTSET") {
      a.pad_begin = pads[i];
      a.pad_end = pads[i + n];
      if (a.pad_begin < 0 || a.pad_end < 0) fail_node(node, "negative pads are not allowed");
      const int64_t span = a.in + a.pad_begin + a.pad_end - extent;
      if (span < 0) {
        a.out = 0;
      } else if (ceil_mode) {
        a.out = (span + a.stride - 1) / a.stride + 1;
        if ((a.out - 1) * a.stride >= a.in + a.pad_begin) --a.out;
      } else {
        a.out = span / a.stride + 1;
      }
    } else {
      fail_node(node, "unknown auto_pad '" + auto_pad + "'", "use NOTSET, SAME_UPPER, SAME_LOWER or VALID");
    }
    if (a.out <= 0) fail_node(node, "the window does not fit the input (output size would be empty)");
  }
  return axes;
}

// A grain (elements per chunk) that keeps per-chunk overhead small for memory-bound loops.
inline constexpr int64_t kElementwiseGrain = 32768;

}  // namespace detrq::runtime::kernels
