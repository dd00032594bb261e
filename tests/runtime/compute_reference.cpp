// Reference implementations for the compute kernel tests (see compute_reference.h).
#include "runtime/compute_reference.h"

#include <algorithm>
#include <cmath>

namespace detrq::testing {

core::Tensor random_tensor(core::Shape shape, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  core::Tensor t = core::Tensor::empty(core::DType::kFloat32, std::move(shape));
  for (float& v : t.span<float>()) v = dist(gen);
  return t;
}

core::Tensor random_tensor_f64(core::Shape shape, uint32_t seed, double lo, double hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  core::Tensor t = core::Tensor::empty(core::DType::kFloat64, std::move(shape));
  for (double& v : t.span<double>()) v = dist(gen);
  return t;
}

std::vector<double> conv2d_reference(const core::Tensor& x, const core::Tensor& w, const core::Tensor& b,
                                     const ConvParams& p, core::Shape& out_shape) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t m = w.dim(0), cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = (h + p.pads[0] + p.pads[2] - ((kh - 1) * p.dilations[0] + 1)) / p.strides[0] + 1;
  const int64_t ow = (wd + p.pads[1] + p.pads[3] - ((kw - 1) * p.dilations[1] + 1)) / p.strides[1] + 1;
  out_shape = {n, m, oh, ow};
  std::vector<double> y(static_cast<std::size_t>(n * m * oh * ow));
  const float* xd = x.data<float>();
  const float* wdt = w.data<float>();
  const int64_t mg = m / p.group;
  for (int64_t in = 0; in < n; ++in) {
    for (int64_t om = 0; om < m; ++om) {
      const int64_t g = om / mg;
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          double acc = b.defined() ? b.data<float>()[om] : 0.0;
          for (int64_t ic = 0; ic < cg; ++ic) {
            const int64_t ch = g * cg + ic;
            for (int64_t a = 0; a < kh; ++a) {
              for (int64_t bb = 0; bb < kw; ++bb) {
                const int64_t ih = i * p.strides[0] - p.pads[0] + a * p.dilations[0];
                const int64_t iw = j * p.strides[1] - p.pads[1] + bb * p.dilations[1];
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                acc += static_cast<double>(xd[((in * c + ch) * h + ih) * wd + iw]) *
                       wdt[((om * cg + ic) * kh + a) * kw + bb];
              }
            }
          }
          y[static_cast<std::size_t>(((in * m + om) * oh + i) * ow + j)] = acc;
        }
      }
    }
  }
  return y;
}

double max_abs_diff(const core::Tensor& a, const std::vector<double>& b) {
  double worst = 0.0;
  const auto av = a.span<float>();
  if (av.size() != b.size()) return INFINITY;
  for (std::size_t i = 0; i < b.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(av[i]) - b[i]));
  return worst;
}

}  // namespace detrq::testing
