// Resize (opsets 10 to 19): nearest, linear and cubic interpolation over any axes, every
// coordinate_transformation_mode and nearest_mode of the specification, scales or sizes (with axes
// and keep_aspect_ratio_policy), exclude_outside and extrapolation_value; antialias=0 only. Each
// output index of each axis gets its taps (input index, weight) once; an output element is the sum
// over the product of its axes' taps.
#include <cmath>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

enum class ResizeMode { kNearest, kLinear, kCubic };

struct Tap {
  int64_t index;
  double weight;
};

// Per output index of one axis: its taps, or none with `outside` set (tf_crop_and_resize extrapolation).
struct AxisTaps {
  std::vector<int64_t> begin;  // begin[i]..begin[i+1] index into taps
  std::vector<Tap> taps;
  std::vector<char> outside;
};

std::vector<double> read_floats(const Tensor& t) {
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = t.dtype() == DType::kFloat64 ? t.data<double>()[i]
                                        : (t.dtype() == DType::kFloat32 ? t.data<float>()[i]
                                                                        : core::half_to_float(static_cast<const uint16_t*>(t.raw_data())[i]));
  }
  return v;
}

class ResizeKernel final : public Kernel {
 public:
  ResizeKernel(const onnx::Node& node, int opset) : node_(node), opset_(opset) {
    const std::string mode = node.attr_string("mode", "nearest");
    if (mode == "nearest") {
      mode_ = ResizeMode::kNearest;
    } else if (mode == "linear" || mode == "bilinear" || mode == "trilinear") {
      mode_ = ResizeMode::kLinear;
    } else if (mode == "cubic" || mode == "bicubic") {
      mode_ = ResizeMode::kCubic;
    } else {
      fail_node(node, "unknown mode '" + mode + "'", "use nearest, linear or cubic");
    }
    // Opset 10 had no attributes for these; its behaviour is the asymmetric mapping.
    transform_ = opset >= 11 ? node.attr_string("coordinate_transformation_mode", "half_pixel") : "asymmetric";
    nearest_mode_ = opset >= 11 ? node.attr_string("nearest_mode", "round_prefer_floor") : "floor";
    cubic_a_ = node.attr_float("cubic_coeff_a", -0.75F);
    exclude_outside_ = node.attr_int("exclude_outside", 0) != 0;
    extrapolation_ = node.attr_float("extrapolation_value", 0.0F);
    policy_ = node.attr_string("keep_aspect_ratio_policy", "stretch");
    axes_attr_ = node.attr_ints("axes");
    static const char* kTransforms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                        "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn"};
    if (std::find(std::begin(kTransforms), std::end(kTransforms), transform_) == std::end(kTransforms)) {
      fail_node(node, "unknown coordinate_transformation_mode '" + transform_ + "'");
    }
    if (nearest_mode_ != "round_prefer_floor" && nearest_mode_ != "round_prefer_ceil" && nearest_mode_ != "floor" &&
        nearest_mode_ != "ceil") {
      fail_node(node, "unknown nearest_mode '" + nearest_mode_ + "'");
    }
    if (node.attr_int("antialias", 0) != 0) {
      unsupported_node(node, "antialias=1 is not supported", "export the model with antialias disabled");
    }
    if (policy_ != "stretch" && policy_ != "not_larger" && policy_ != "not_smaller") {
      fail_node(node, "unknown keep_aspect_ratio_policy '" + policy_ + "'");
    }
  }

  // The output shape for `sizes` over `axes`, and scales_ from it (keep_aspect_ratio_policy applied).
  Shape output_from_sizes(const Tensor& sizes_t, const std::vector<int64_t>& axes, const Shape& in) {
    if (sizes_t.dtype() != DType::kInt64) fail_node(node_, "sizes must be int64");
    const int64_t* s = sizes_t.data<int64_t>();
    if (sizes_t.numel() != static_cast<int64_t>(axes.size())) fail_node(node_, "sizes does not match the axes");
    Shape out = in;
    for (std::size_t i = 0; i < axes.size(); ++i) {
      const std::size_t a = static_cast<std::size_t>(axes[i]);
      if (s[i] < 0) fail_node(node_, "sizes must not be negative");
      out[a] = s[i];
      scales_[a] = in[a] == 0 ? 1.0 : static_cast<double>(s[i]) / static_cast<double>(in[a]);
    }
    if (policy_ != "stretch") {
      double scale = policy_ == "not_larger" ? INFINITY : 0.0;
      for (int64_t a : axes) {
        scale = policy_ == "not_larger" ? std::min(scale, scales_[static_cast<std::size_t>(a)])
                                        : std::max(scale, scales_[static_cast<std::size_t>(a)]);
      }
      for (int64_t a : axes) {
        const std::size_t ua = static_cast<std::size_t>(a);
        scales_[ua] = scale;
        out[ua] = static_cast<int64_t>(scale * static_cast<double>(in[ua]) + 0.5);
      }
    }
    return out;
  }

  // roi given for the listed axes: expanded to every axis (start 0, end 1 elsewhere).
  void expand_roi(const std::vector<int64_t>& axes, std::size_t rank) {
    if (roi_.empty() || roi_.size() == 2 * rank) return;
    if (roi_.size() != 2 * axes.size()) fail_node(node_, "roi has the wrong length");
    std::vector<double> full(2 * rank);
    for (std::size_t i = 0; i < rank; ++i) {
      full[i] = 0.0;
      full[rank + i] = 1.0;
    }
    for (std::size_t i = 0; i < axes.size(); ++i) {
      full[static_cast<std::size_t>(axes[i])] = roi_[i];
      full[rank + static_cast<std::size_t>(axes[i])] = roi_[axes.size() + i];
    }
    roi_ = full;
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 1);
    const TensorType& x = ctx.input_types[0];
    require_dtype(node_, x, {DType::kFloat32, DType::kFloat64, DType::kInt8, DType::kUInt8, DType::kInt32, DType::kInt64},
                  "input X");
    const std::size_t rank = x.shape.size();
    if (rank == 0) fail_node(node_, "X must have rank >= 1");
    const std::size_t scales_at = opset_ >= 11 ? 2 : 1, sizes_at = 3;
    auto constant = [&](std::size_t i) -> const Tensor* {
      if (!ctx.input_present(i)) return nullptr;
      if (!ctx.input_values[i]) {
        unsupported_node(node_, "input " + std::to_string(i) + " (scales/sizes/roi) is not a constant",
                         "detrq plans static shapes; fold the shape arithmetic into constants");
      }
      return ctx.input_values[i]->numel() == 0 ? nullptr : ctx.input_values[i];
    };
    const Tensor* scales_t = constant(scales_at);
    const Tensor* sizes_t = opset_ >= 11 ? constant(sizes_at) : nullptr;
    if (opset_ >= 11 && ctx.input_present(1) && ctx.input_values[1] && ctx.input_values[1]->numel() > 0) {
      roi_ = read_floats(*ctx.input_values[1]);
    } else if (opset_ >= 11 && ctx.input_present(1) && !ctx.input_values[1] && transform_ == "tf_crop_and_resize") {
      unsupported_node(node_, "roi is not a constant");
    }
    if ((scales_t == nullptr) == (sizes_t == nullptr)) {
      fail_node(node_, "exactly one of scales and sizes must be given");
    }
    std::vector<int64_t> axes = axes_attr_;
    if (axes.empty()) {
      for (std::size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int64_t>(i));
    }
    for (int64_t& a : axes) a = normalize_axis(node_, a, static_cast<int64_t>(rank));
    scales_.assign(rank, 1.0);
    Shape out = x.shape;
    if (scales_t) {
      if (scales_t->dtype() != DType::kFloat32 && scales_t->dtype() != DType::kFloat64) {
        fail_node(node_, "scales must be float");
      }
      const std::vector<double> s = read_floats(*scales_t);
      if (s.size() != axes.size()) fail_node(node_, "scales has " + std::to_string(s.size()) + " values for " + std::to_string(axes.size()) + " axes");
      for (std::size_t i = 0; i < axes.size(); ++i) {
        if (!(s[i] > 0)) fail_node(node_, "scales must be positive");
        scales_[static_cast<std::size_t>(axes[i])] = s[i];
        out[static_cast<std::size_t>(axes[i])] =
            static_cast<int64_t>(std::floor(static_cast<double>(x.shape[static_cast<std::size_t>(axes[i])]) *
                                            scales_[static_cast<std::size_t>(axes[i])]));
      }
    } else {
      out = output_from_sizes(*sizes_t, axes, x.shape);
    }
    expand_roi(axes, rank);
    in_shape_ = x.shape;
    out_shape_ = out;
    build_taps();
    return {TensorType{x.dtype, out}};
  }

  void run(RunContext& ctx) override {
    switch (ctx.inputs[0]->dtype()) {
      case DType::kFloat32: run_typed<float>(ctx); break;
      case DType::kFloat64: run_typed<double>(ctx); break;
      case DType::kInt8: run_typed<int8_t>(ctx); break;
      case DType::kUInt8: run_typed<uint8_t>(ctx); break;
      case DType::kInt32: run_typed<int32_t>(ctx); break;
      case DType::kInt64: run_typed<int64_t>(ctx); break;
      default: unsupported_node(node_, "dtype not supported");
    }
  }

 private:
  // Source coordinate of output index i on an axis (the specification's formulas).
  double source_coordinate(int64_t i, int64_t in, int64_t out, double scale, std::size_t axis, bool& outside) const {
    const double x = static_cast<double>(i);
    const double out_width = scale * static_cast<double>(in);
    outside = false;
    if (transform_ == "align_corners") return out_width == 1 ? 0.0 : x * static_cast<double>(in - 1) / (out_width - 1);
    if (transform_ == "asymmetric") return x / scale;
    if (transform_ == "tf_half_pixel_for_nn") return (x + 0.5) / scale;
    if (transform_ == "pytorch_half_pixel") return out_width == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    if (transform_ == "half_pixel_symmetric") {
      const double adjustment = static_cast<double>(out) / out_width;
      const double offset = static_cast<double>(in) / 2 * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    if (transform_ == "tf_crop_and_resize") {
      const std::size_t rank = in_shape_.size();
      const double start = roi_.empty() ? 0.0 : roi_[axis], end = roi_.empty() ? 1.0 : roi_[rank + axis];
      double v = out_width == 1 ? (end - start) * static_cast<double>(in - 1) / 2
                                : x * (end - start) * static_cast<double>(in - 1) / (out_width - 1);
      v += start * static_cast<double>(in - 1);
      outside = v < 0 || v > static_cast<double>(in - 1);
      return v;
    }
    return (x + 0.5) / scale - 0.5;  // half_pixel
  }

  void build_taps() {
    const std::size_t rank = in_shape_.size();
    taps_.assign(rank, {});
    for (std::size_t a = 0; a < rank; ++a) {
      AxisTaps& at = taps_[a];
      const int64_t in = in_shape_[a], out = out_shape_[a];
      at.begin.push_back(0);
      for (int64_t i = 0; i < out; ++i) {
        bool outside = false;
        const double xo = source_coordinate(i, in, out, scales_[a], a, outside);
        at.outside.push_back(outside ? 1 : 0);
        if (!outside && in > 0) add_taps(at, xo, in);
        at.begin.push_back(static_cast<int64_t>(at.taps.size()));
      }
    }
  }

  // Taps of one source coordinate: the reference's "ratio in (0, 1]" convention, edge padding.
  void add_taps(AxisTaps& at, double xo, int64_t in) const {
    const double fl = std::floor(xo);
    const bool integral = xo == fl;
    const int64_t base = integral ? static_cast<int64_t>(fl) - 1 : static_cast<int64_t>(fl);
    const double ratio = integral ? 1.0 : xo - fl;
    std::vector<std::pair<int64_t, double>> raw;
    if (mode_ == ResizeMode::kNearest) {
      bool upper;
      if (integral) {
        upper = true;
      } else if (nearest_mode_ == "round_prefer_floor") {
        upper = ratio > 0.5;
      } else if (nearest_mode_ == "round_prefer_ceil") {
        upper = ratio >= 0.5;
      } else {
        upper = nearest_mode_ == "ceil";
      }
      raw.push_back({upper ? base + 1 : base, 1.0});
    } else if (mode_ == ResizeMode::kLinear) {
      raw.push_back({base, 1.0 - ratio});
      raw.push_back({base + 1, ratio});
    } else {
      const double a = cubic_a_;
      const double r = ratio, s = 1 - ratio;
      raw.push_back({base - 1, ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a});
      raw.push_back({base, ((a + 2) * r - (a + 3)) * r * r + 1});
      raw.push_back({base + 1, ((a + 2) * s - (a + 3)) * s * s + 1});
      raw.push_back({base + 2, ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a});
    }
    if (exclude_outside_ && mode_ != ResizeMode::kNearest) {
      double sum = 0;
      for (auto& [idx, wt] : raw) {
        if (idx < 0 || idx >= in) wt = 0;
        sum += wt;
      }
      if (sum != 0) {
        for (auto& t : raw) t.second /= sum;
      }
    }
    for (const auto& [idx, wt] : raw) {
      if (wt == 0) continue;
      at.taps.push_back({std::clamp<int64_t>(idx, 0, in - 1), wt});
    }
  }

  template <typename T>
  void run_typed(RunContext& ctx) {
    const T* x = ctx.inputs[0]->template data<T>();
    T* y = ctx.outputs[0]->template data<T>();
    const std::size_t rank = in_shape_.size();
    const int64_t total = shape_numel(out_shape_);
    if (total == 0) return;
    std::vector<int64_t> in_strides(rank, 1);
    for (std::size_t a = rank; a-- > 1;) in_strides[a - 1] = in_strides[a] * in_shape_[a];
    const int64_t last = rank == 0 ? 1 : out_shape_[rank - 1];
    ctx.pool.parallel_for(total / last, 16, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> coord(rank, 0);
      for (int64_t row = begin; row < end; ++row) {
        int64_t rem = row;
        for (std::size_t a = rank - 1; a-- > 0;) {
          coord[a] = rem % out_shape_[a];
          rem /= out_shape_[a];
        }
        for (int64_t j = 0; j < last; ++j) {
          coord[rank - 1] = j;
          y[row * last + j] = static_cast<T>(element(x, coord, in_strides));
        }
      }
    });
  }

  template <typename T>
  double element(const T* x, const std::vector<int64_t>& coord, const std::vector<int64_t>& strides) const {
    const std::size_t rank = coord.size();
    for (std::size_t a = 0; a < rank; ++a) {
      if (taps_[a].outside[static_cast<std::size_t>(coord[a])]) return extrapolation_;
    }
    return accumulate(x, coord, strides, 0, 0, 1.0);
  }

  template <typename T>
  double accumulate(const T* x, const std::vector<int64_t>& coord, const std::vector<int64_t>& strides,
                    std::size_t axis, int64_t offset, double weight) const {
    if (axis == coord.size()) return weight * static_cast<double>(x[offset]);
    const AxisTaps& at = taps_[axis];
    const std::size_t i = static_cast<std::size_t>(coord[axis]);
    double sum = 0;
    for (int64_t t = at.begin[i]; t < at.begin[i + 1]; ++t) {
      const Tap& tap = at.taps[static_cast<std::size_t>(t)];
      sum += accumulate(x, coord, strides, axis + 1, offset + tap.index * strides[axis], weight * tap.weight);
    }
    return sum;
  }

  onnx::Node node_;
  int opset_;
  ResizeMode mode_ = ResizeMode::kNearest;
  std::string transform_, nearest_mode_, policy_;
  float cubic_a_, extrapolation_;
  bool exclude_outside_;
  std::vector<int64_t> axes_attr_;
  std::vector<double> roi_, scales_;
  Shape in_shape_, out_shape_;
  std::vector<AxisTaps> taps_;
};

}  // namespace

std::unique_ptr<Kernel> make_resize_kernel(const onnx::Node& node, int opset) {
  return std::make_unique<ResizeKernel>(node, opset);
}

}  // namespace detrq::runtime::kernels
