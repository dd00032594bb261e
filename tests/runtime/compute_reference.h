// Straightforward reference implementations the compute kernel tests compare against: direct loops
// written from the ONNX specification, sharing no code with the kernels.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "detrq/core/tensor.h"

namespace detrq::testing {

// Uniform random tensor in [lo, hi) from a fixed seed.
core::Tensor random_tensor(core::Shape shape, uint32_t seed, float lo = -1.0F, float hi = 1.0F);
core::Tensor random_tensor_f64(core::Shape shape, uint32_t seed, double lo = -1.0, double hi = 1.0);

struct ConvParams {
  std::vector<int64_t> strides{1, 1}, dilations{1, 1}, pads{0, 0, 0, 0};  // pads: h_begin, w_begin, h_end, w_end
  int64_t group = 1;
};
// Direct 2-D convolution (NCHW, OIHW) in double precision; bias may be undefined.
std::vector<double> conv2d_reference(const core::Tensor& x, const core::Tensor& w, const core::Tensor& b,
                                     const ConvParams& p, core::Shape& out_shape);

// Max |a - b| over two float tensors of equal size (as doubles).
double max_abs_diff(const core::Tensor& a, const std::vector<double>& b);

}  // namespace detrq::testing
