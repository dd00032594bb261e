// Helpers shared by the compute kernels: error messages that name the node, axis and attribute
// handling, and the auto_pad arithmetic of Conv and the pooling operators.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/runtime/kernel.h"

namespace detrq::runtime::kernels {

using core::shape_numel;
using core::shape_to_string;

[[noreturn]] inline void fail_node(const onnx::Node& node, const std::string& what, const std::string& hint = {}) {
  throw_invalid(node.describe(), what, hint);
}
[[noreturn]] inline void unsupported_node(const onnx::Node& node, const std::string& what,
                                          const std::string& hint = {}) {
  throw_unsupported(node.describe(), what, hint);
}

// Maps a possibly negative axis into [0, rank); fails naming the node when out of range.
inline int normalize_axis(const onnx::Node& node, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) {
    fail_node(node, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
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

}  // namespace detrq::runtime::kernels
