// GridSample (opset 16; opset 20's "linear"/"cubic" spellings accepted): samples X [N,C,H,W] at the
// normalized (x, y) locations of grid [N,Ho,Wo,2] with nearest, bilinear or bicubic interpolation
// and zeros, border or reflection padding. X and grid may differ in dtype (one Deformable DETR export
// samples float32 features with a float64 grid). For each output location the taps (input offsets and
// weights) are computed once and applied to every channel.
#include <cmath>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

enum class SampleMode { kNearest, kBilinear, kBicubic };
enum class PadMode { kZeros, kBorder, kReflection };

// Reflects x into [lo, hi] by folding it back and forth over the borders.
template <typename T>
T reflect(T x, T lo, T hi) {
  const T range = hi - lo;
  if (range <= T(0)) return lo;
  if (x < lo) {
    const T d = lo - x;
    const int64_t n = static_cast<int64_t>(d / range);
    const T r = d - static_cast<T>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const T d = x - hi;
    const int64_t n = static_cast<int64_t>(d / range);
    const T r = d - static_cast<T>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

// Keys' cubic convolution weights (A = -0.75) for the 4 taps around a point at fraction t.
template <typename T>
void cubic_weights(T t, T w[4]) {
  const T a = T(-0.75);
  const T x0 = t + 1, x1 = t, x2 = 1 - t, x3 = 2 - t;
  w[0] = ((a * x0 - 5 * a) * x0 + 8 * a) * x0 - 4 * a;
  w[1] = ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1;
  w[2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1;
  w[3] = ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a;
}

class GridSampleKernel final : public Kernel {
 public:
  explicit GridSampleKernel(const onnx::Node& node) : node_(node) {
    const std::string mode = node.attr_string("mode", "bilinear");
    if (mode == "bilinear" || mode == "linear") {
      mode_ = SampleMode::kBilinear;
    } else if (mode == "nearest") {
      mode_ = SampleMode::kNearest;
    } else if (mode == "bicubic" || mode == "cubic") {
      mode_ = SampleMode::kBicubic;
    } else {
      fail_node(node, "unknown mode '" + mode + "'", "use bilinear, nearest or bicubic");
    }
    const std::string pad = node.attr_string("padding_mode", "zeros");
    if (pad == "zeros") {
      pad_ = PadMode::kZeros;
    } else if (pad == "border") {
      pad_ = PadMode::kBorder;
    } else if (pad == "reflection") {
      pad_ = PadMode::kReflection;
    } else {
      fail_node(node, "unknown padding_mode '" + pad + "'", "use zeros, border or reflection");
    }
    align_corners_ = node.attr_int("align_corners", 0) != 0;
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 2);
    const TensorType& x = ctx.input_types[0];
    const TensorType& grid = ctx.input_types[1];
    require_dtype(node_, x, {DType::kFloat32, DType::kFloat64}, "input X");
    require_dtype(node_, grid, {DType::kFloat32, DType::kFloat64}, "grid");
    if (x.shape.size() != 4) {
      unsupported_node(node_, "X must be 4-D [N, C, H, W], got " + shape_to_string(x.shape),
                       "detrq samples 2-D feature maps");
    }
    if (grid.shape.size() != 4 || grid.shape[0] != x.shape[0] || grid.shape[3] != 2) {
      fail_node(node_, "grid must be [N, H_out, W_out, 2] with N = " + std::to_string(x.shape[0]) + ", got " +
                           shape_to_string(grid.shape));
    }
    points_ = grid.shape[1] * grid.shape[2];
    return {TensorType{x.dtype, {x.shape[0], x.shape[1], grid.shape[1], grid.shape[2]}}};
  }

  void run(RunContext& ctx) override {
    const DType xd = ctx.inputs[0]->dtype(), gd = ctx.inputs[1]->dtype();
    if (xd == DType::kFloat32 && gd == DType::kFloat32) {
      run_typed<float, float>(ctx);
    } else if (xd == DType::kFloat32) {
      run_typed<float, double>(ctx);
    } else if (gd == DType::kFloat32) {
      run_typed<double, float>(ctx);
    } else {
      run_typed<double, double>(ctx);
    }
  }

 private:
  // Input value at integer (r, c) after padding: zeros gives weight 0, border clamps, reflection folds.
  // Returns false when the tap contributes nothing.
  template <typename C>
  bool tap_index(int64_t r, int64_t c, int64_t h, int64_t w, int64_t& offset) const {
    if (pad_ == PadMode::kZeros) {
      if (r < 0 || r >= h || c < 0 || c >= w) return false;
    } else if (pad_ == PadMode::kBorder) {
      r = std::clamp<int64_t>(r, 0, h - 1);
      c = std::clamp<int64_t>(c, 0, w - 1);
    } else {
      const C lo_x = align_corners_ ? C(0) : C(-0.5), hi_x = align_corners_ ? C(w - 1) : C(w) - C(0.5);
      const C lo_y = align_corners_ ? C(0) : C(-0.5), hi_y = align_corners_ ? C(h - 1) : C(h) - C(0.5);
      c = static_cast<int64_t>(reflect<C>(static_cast<C>(c), lo_x, hi_x));
      r = static_cast<int64_t>(reflect<C>(static_cast<C>(r), lo_y, hi_y));
      r = std::clamp<int64_t>(r, 0, h - 1);
      c = std::clamp<int64_t>(c, 0, w - 1);
    }
    offset = r * w + c;
    return true;
  }

  // The taps of the output location whose grid point is (gx, gy): input offsets (-1: a zero-padding tap)
  // and weights.
  template <typename C>
  void point_taps(C gx, C gy, int64_t h, int64_t w, int taps, int64_t* off, C* wt) const {
    const C x_lo = align_corners_ ? C(0) : C(-0.5), x_hi = align_corners_ ? C(w - 1) : C(w) - C(0.5);
    const C y_lo = align_corners_ ? C(0) : C(-0.5), y_hi = align_corners_ ? C(h - 1) : C(h) - C(0.5);
    C px = align_corners_ ? (gx + 1) / 2 * C(w - 1) : ((gx + 1) * C(w) - 1) / 2;
    C py = align_corners_ ? (gy + 1) / 2 * C(h - 1) : ((gy + 1) * C(h) - 1) / 2;
    if (mode_ == SampleMode::kNearest) {
      px = std::nearbyint(px);
      py = std::nearbyint(py);
    }
    if (px < x_lo || px > x_hi || py < y_lo || py > y_hi) {
      if (pad_ == PadMode::kBorder) {
        px = std::clamp(px, C(0), C(w - 1));
        py = std::clamp(py, C(0), C(h - 1));
      } else if (pad_ == PadMode::kReflection) {
        px = reflect(px, x_lo, x_hi);
        py = reflect(py, y_lo, y_hi);
      }
    }
    auto set_tap = [&](int t, int64_t r, int64_t c, C weight) {
      int64_t o = 0;
      const bool valid = std::isfinite(px) && std::isfinite(py) && tap_index<C>(r, c, h, w, o);
      off[t] = valid ? o : -1;  // -1: a zero-padding tap, skipped (so inf/NaN elsewhere stays out)
      wt[t] = valid ? weight : C(0);
    };
    if (!std::isfinite(px) || !std::isfinite(py)) {
      for (int t = 0; t < taps; ++t) {
        off[t] = -1;
        wt[t] = C(0);
      }
      return;
    }
    if (mode_ == SampleMode::kNearest) {
      set_tap(0, static_cast<int64_t>(py), static_cast<int64_t>(px), C(1));
    } else if (mode_ == SampleMode::kBilinear) {
      const C fx = std::floor(px), fy = std::floor(py);
      const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
      const C dx = px - fx, dy = py - fy;
      set_tap(0, y0, x0, (1 - dy) * (1 - dx));
      set_tap(1, y0, x0 + 1, (1 - dy) * dx);
      set_tap(2, y0 + 1, x0, dy * (1 - dx));
      set_tap(3, y0 + 1, x0 + 1, dy * dx);
    } else {
      const C fx = std::floor(px), fy = std::floor(py);
      const int64_t x0 = static_cast<int64_t>(fx) - 1, y0 = static_cast<int64_t>(fy) - 1;
      C wx[4], wy[4];
      cubic_weights(px - fx, wx);
      cubic_weights(py - fy, wy);
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) set_tap(i * 4 + j, y0 + i, x0 + j, wy[i] * wx[j]);
      }
    }
  }

  template <typename TX, typename TG>
  void run_typed(RunContext& ctx) {
    using C = std::conditional_t<std::is_same_v<TX, double> || std::is_same_v<TG, double>, double, float>;
    const Tensor& xt = *ctx.inputs[0];
    const TX* x = xt.data<TX>();
    const TG* grid = ctx.inputs[1]->data<TG>();
    TX* y = ctx.outputs[0]->data<TX>();
    const int64_t n = xt.dim(0), channels = xt.dim(1), h = xt.dim(2), w = xt.dim(3);
    const int64_t ho = ctx.outputs[0]->dim(2), wo = ctx.outputs[0]->dim(3);
    const int64_t points = ho * wo;
    const int taps = mode_ == SampleMode::kNearest ? 1 : (mode_ == SampleMode::kBilinear ? 4 : 16);
    if (h == 0 || w == 0) {
      std::fill_n(y, ctx.outputs[0]->numel(), TX(0));
      return;
    }
    // Each output location's taps (input offsets and weights), in the scratch.
    ScratchLayout scratch(ctx.scratch);
    int64_t* offsets = scratch.take<int64_t>(static_cast<std::size_t>(points * taps));
    C* weights = scratch.take<C>(static_cast<std::size_t>(points * taps));
    for (int64_t b = 0; b < n; ++b) {
      const TG* g = grid + b * points * 2;
      // Taps of every output location of this image.
      ctx.pool.parallel_for(points, 256, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
          int64_t* off = offsets + p * taps;
          C* wt = weights + p * taps;
          point_taps<C>(static_cast<C>(g[p * 2]), static_cast<C>(g[p * 2 + 1]), h, w, taps, off, wt);
        }
      });
      // Apply them to every channel.
      ctx.pool.parallel_for(channels, 1, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
          const TX* plane = x + (b * channels + c) * h * w;
          TX* out = y + (b * channels + c) * points;
          for (int64_t p = 0; p < points; ++p) {
            const int64_t* off = offsets + p * taps;
            const C* wt = weights + p * taps;
            C acc = 0;
            for (int t = 0; t < taps; ++t) {
              if (off[t] >= 0) acc += wt[t] * static_cast<C>(plane[off[t]]);
            }
            out[p] = static_cast<TX>(acc);
          }
        }
      });
    }
  }

  std::size_t scratch_bytes(int threads) const override {
    (void)threads;
    const auto taps = static_cast<std::size_t>(points_ * (mode_ == SampleMode::kNearest ? 1 : mode_ == SampleMode::kBilinear ? 4 : 16));
    ScratchLayout layout;
    layout.take<int64_t>(taps);
    layout.take<double>(taps);  // room for either weight type
    return layout.bytes();
  }

  onnx::Node node_;
  SampleMode mode_ = SampleMode::kBilinear;
  PadMode pad_ = PadMode::kZeros;
  bool align_corners_ = false;
  int64_t points_ = 0;  // output locations per image
};

}  // namespace

std::unique_ptr<Kernel> make_grid_sample_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<GridSampleKernel>(node);
}

}  // namespace detrq::runtime::kernels
