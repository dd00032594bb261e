// Conv (1-D and 2-D, groups including depthwise, strides, dilations, pads, auto_pad, bias) as
// im2col + GEMM per image and group: Y_g[M/G, OH*OW] = W_g[M/G, C/G*kh*kw] x col_g, the windows unfolded
// straight into the GEMM's packed panels (float32). A 1x1 conv with unit strides and no padding
// multiplies the input directly.
#include <algorithm>
#include <cstring>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/gemm/gemm.h"

namespace detrq::runtime::kernels {
namespace {

class ConvKernel final : public Kernel {
 public:
  explicit ConvKernel(const onnx::Node& node) : node_(node), group_(node.attr_int("group", 1)) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 2);
    const TensorType& x = ctx.input_types[0];
    const TensorType& w = ctx.input_types[1];
    require_dtype(node_, x, {DType::kFloat32, DType::kFloat64}, "input X");
    if (w.dtype != x.dtype) fail_node(node_, "W has a different dtype than X");
    const std::size_t spatial = x.shape.size() >= 2 ? x.shape.size() - 2 : 0;
    if (spatial < 1 || spatial > 2) {
      unsupported_node(node_, "Conv with input " + shape_to_string(x.shape) + " is not supported",
                       "detrq runs 1-D and 2-D convolutions (N x C x [H x] W)");
    }
    if (w.shape.size() != x.shape.size()) fail_node(node_, "W " + shape_to_string(w.shape) + " does not match X's rank");
    batch_ = x.shape[0];
    channels_ = x.shape[1];
    out_channels_ = w.shape[0];
    if (group_ < 1 || channels_ % group_ != 0 || out_channels_ % group_ != 0 || w.shape[1] * group_ != channels_) {
      fail_node(node_, "group " + std::to_string(group_) + " does not fit X " + shape_to_string(x.shape) + " and W " +
                           shape_to_string(w.shape));
    }
    std::vector<int64_t> kernel(w.shape.begin() + 2, w.shape.end());
    if (node_.has_attr("kernel_shape") && node_.attr_ints("kernel_shape") != kernel) {
      fail_node(node_, "kernel_shape disagrees with W's shape " + shape_to_string(w.shape));
    }
    const std::vector<WindowAxis> axes =
        window_geometry(node_, Shape(x.shape.begin() + 2, x.shape.end()), kernel, false);
    // 1-D runs as 2-D with a height of 1.
    h_ = spatial == 2 ? axes[0] : WindowAxis{1, 1, 1, 1, 0, 0, 1};
    w_ = axes[spatial - 1];
    if (ctx.input_present(2)) {
      const TensorType& b = ctx.input_types[2];
      if (b.dtype != x.dtype || shape_numel(b.shape) != out_channels_) {
        fail_node(node_, "B must be a 1-D tensor of " + std::to_string(out_channels_) + " values like X's dtype");
      }
      has_bias_ = true;
    }
    Shape out{batch_, out_channels_};
    for (const WindowAxis& a : axes) out.push_back(a.out);
    direct_ = h_.kernel == 1 && w_.kernel == 1 && h_.stride == 1 && w_.stride == 1 && h_.pad_begin == 0 &&
              h_.pad_end == 0 && w_.pad_begin == 0 && w_.pad_end == 0;
    dtype_ = x.dtype;
    packs_.assign(static_cast<std::size_t>(group_), PackedMatrixB());
    items_.resize(static_cast<std::size_t>(group_));
    return {TensorType{x.dtype, out}};
  }

  void run(RunContext& ctx) override {
    if (ctx.inputs[0]->dtype() == DType::kFloat32) {
      run_typed<float>(ctx);
    } else {
      run_typed<double>(ctx);
    }
  }

 private:
  // Row `row` = (c, ki, kj) of one image's unfolded windows: the input value under kernel tap (ki, kj) of
  // channel c for every output position (oh, ow), zero where the tap falls in the padding.
  template <typename T>
  void unfold_row(const T* x, int64_t row, T* out) const {
    const int64_t kh = h_.kernel, kw = w_.kernel, oh_n = h_.out, ow_n = w_.out;
    const int64_t c = row / (kh * kw);
    const int64_t ki = (row / kw) % kh, kj = row % kw;
    const T* plane = x + c * h_.in * w_.in;
    for (int64_t oh = 0; oh < oh_n; ++oh) {
      const int64_t ih = oh * h_.stride - h_.pad_begin + ki * h_.dilation;
      T* orow = out + oh * ow_n;
      if (ih < 0 || ih >= h_.in) {
        std::fill_n(orow, ow_n, T(0));
        continue;
      }
      const T* irow = plane + ih * w_.in;
      // Output columns whose input column iw = ow * stride + offset lies inside the row: one run
      // [lo, hi), copied without bounds checks (a plain copy at stride 1), zeros on either side.
      const int64_t offset = kj * w_.dilation - w_.pad_begin;
      const int64_t s = w_.stride;
      const int64_t lo = std::clamp<int64_t>(offset >= 0 ? 0 : (-offset + s - 1) / s, 0, ow_n);
      const int64_t hi = std::clamp<int64_t>(w_.in - offset > 0 ? (w_.in - offset + s - 1) / s : 0, lo, ow_n);
      std::fill(orow, orow + lo, T(0));
      if (s == 1) {
        std::copy(irow + lo + offset, irow + hi + offset, orow + lo);
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) orow[ow] = irow[ow * s + offset];
      }
      std::fill(orow + hi, orow + ow_n, T(0));
    }
  }

  template <typename T>
  void run_typed(RunContext& ctx) {
    const T* x = ctx.inputs[0]->template data<T>();
    const T* w = ctx.inputs[1]->template data<T>();
    const T* bias = has_bias_ && ctx.inputs.size() > 2 && ctx.inputs[2] ? ctx.inputs[2]->template data<T>() : nullptr;
    T* y = ctx.outputs[0]->template data<T>();
    const int64_t cg = channels_ / group_, mg = out_channels_ / group_;
    const int64_t k = cg * h_.kernel * w_.kernel;
    const int64_t spatial_out = h_.out * w_.out;
    const int64_t spatial_in = h_.in * w_.in;
    if (spatial_out == 0 || out_channels_ == 0) return;
    for (int64_t n = 0; n < batch_; ++n) {
      const T* xn = x + n * channels_ * spatial_in;
      T* yn = y + n * out_channels_ * spatial_out;
      if constexpr (std::is_same_v<T, float>) {
        // Each group's packed B lives in the scratch (planned into the arena: a 3x3 convolution's would be
        // megabytes if each kernel kept its own between runs).
        std::vector<PackedMatrixB>& packed = packs_;
        ScratchLayout scratch(ctx.scratch);
        for (PackedMatrixB& b : packed) b.use_storage(scratch.take<float>(packed_floats()), packed_floats());
        // The unfolding's row buffers: one per thread for one group, one per group for several.
        const std::size_t row_floats = static_cast<std::size_t>(PackedMatrixB::row_buffer_floats(h_.out * w_.out));
        float* rows = scratch.take<float>(row_floats * row_buffer_count(ctx.pool.size()));
        // Each group's B is its channels' unfolded windows (the input itself for a 1x1 convolution),
        // unfolded straight into the GEMM's panels.
        auto pack_group = [&](int64_t g, core::ThreadPool* pool) {
          PackedMatrixB& b = packed[static_cast<std::size_t>(g)];
          if (direct_) {
            b.pack(k, spatial_out, MatrixView<float>{xn + g * k * spatial_out, spatial_out, 1}, pool,
                   depth_block_per_run(k));
          } else {
            b.pack_rows_from(k, spatial_out, depth_block_per_run(k), pool,
                             [&](int64_t row, float* out) { unfold_row<float>(xn, g * k + row, out); },
                             rows + static_cast<std::size_t>(pool ? 0 : g) * row_floats);
          }
        };
        if (group_ == 1) {
          pack_group(0, &ctx.pool);
        } else {
          ctx.pool.parallel_for(group_, 1, [&](int64_t begin, int64_t end) {
            for (int64_t g = begin; g < end; ++g) pack_group(g, nullptr);
          });
        }
        for (int64_t g = 0; g < group_; ++g) {
          // The bias is added to each output tile in cache rather than written first and accumulated onto.
          GemmEpilogue epilogue;
          epilogue.row_bias = bias ? bias + g * mg : nullptr;
          items_[static_cast<std::size_t>(g)] = SgemmItem{MatrixView<float>{w + g * mg * k, k, 1},
                                                          &packed[static_cast<std::size_t>(g)],
                                                          yn + g * mg * spatial_out, epilogue};
        }
        sgemm_packed(mg, spatial_out, k, 1.0F, false, items_, spatial_out, &ctx.pool, ctx.target);
      } else {
        // float64 (a rare export): unfolded into a plain matrix and multiplied by the reference GEMM.
        T* col = ScratchLayout(ctx.scratch).take<T>(column_elements());
        if (!direct_) {
          ctx.pool.parallel_for(channels_ * h_.kernel * w_.kernel, 16, [&](int64_t begin, int64_t end) {
            for (int64_t row = begin; row < end; ++row) unfold_row<T>(xn, row, col + row * spatial_out);
          });
        }
        const T* cols = direct_ ? xn : col;
        if (bias) {
          for (int64_t m = 0; m < out_channels_; ++m) std::fill_n(yn + m * spatial_out, spatial_out, bias[m]);
        }
        for (int64_t g = 0; g < group_; ++g) {
          gemm_reference<T>(mg, spatial_out, k, T(1), MatrixView<T>{w + g * mg * k, k, 1},
                            MatrixView<T>{cols + g * k * spatial_out, spatial_out, 1}, bias != nullptr,
                            yn + g * mg * spatial_out, spatial_out);
        }
      }
    }
  }

  // float: one packed B per group; float64: the unfolded input.
  std::size_t packed_floats() const {
    return static_cast<std::size_t>(
        PackedMatrixB::packed_size(channels_ / group_ * h_.kernel * w_.kernel, h_.out * w_.out));
  }
  std::size_t row_buffer_count(int threads) const {
    return direct_ ? 0 : static_cast<std::size_t>(group_ == 1 ? threads : group_);
  }
  std::size_t column_elements() const {
    return direct_ ? 0 : static_cast<std::size_t>(channels_ * h_.kernel * w_.kernel * h_.out * w_.out);
  }
  std::size_t scratch_bytes(int threads) const override {
    (void)threads;
    ScratchLayout layout;
    if (dtype_ == DType::kFloat32) {
      for (int64_t g = 0; g < group_; ++g) layout.take<float>(packed_floats());
      layout.take<float>(static_cast<std::size_t>(PackedMatrixB::row_buffer_floats(h_.out * w_.out)) *
                         row_buffer_count(threads));
    } else {
      layout.take<double>(column_elements());
    }
    return layout.bytes();
  }

  onnx::Node node_;
  DType dtype_ = DType::kUndefined;
  std::vector<PackedMatrixB> packs_;  // one per group, packing into the scratch
  int64_t group_;
  int64_t batch_ = 0, channels_ = 0, out_channels_ = 0;
  WindowAxis h_, w_;
  bool has_bias_ = false;
  bool direct_ = false;
  std::vector<SgemmItem> items_;
};

}  // namespace

std::unique_ptr<Kernel> make_conv_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<ConvKernel>(node);
}

}  // namespace detrq::runtime::kernels
