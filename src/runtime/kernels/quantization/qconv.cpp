// QConvF (domain com.detrq, made only by the Session's Q/DQ fusion): 2-D Conv (group 1, explicit pads)
// of a quantized activation (q_x, x_scale, x_zero_point) by a constant int8 weight [O, C, kh, kw]
// (w_scale per tensor or per output channel, zero point 0) plus an optional float bias, in int8
// arithmetic: the input transposed to channels-last once, then int8 im2col copying each window
// position's C channels as one run (padding holds the zero point, which dequantizes to 0; a 1x1 conv
// with stride 1 and no padding reads the channels-last input as it is), the int8 GEMM with the
// weight's K ordered (kh, kw, C) to match, then a transpose to NCHW that adds the bias.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "detrq/core/error.h"
#include "runtime/kernels/int8_gemm/int8_gemm.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/quantization/quantization.h"

namespace detrq::runtime::kernels {
namespace {

class QConvF final : public Kernel {
 public:
  explicit QConvF(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    const std::string where = node_label(node_);
    if (ctx.input_types.size() < 5 || !ctx.input_present(0) || !ctx.input_present(1) || !ctx.input_present(3) ||
        !ctx.input_present(4)) {
      throw_invalid(where, "needs inputs q_x, x_scale, [x_zero_point], w_q, w_scale, [bias]");
    }
    const TensorType& x = ctx.input_types[0];
    const TensorType& w = ctx.input_types[3];
    if ((x.dtype != DType::kInt8 && x.dtype != DType::kUInt8) || x.shape.size() != 4) {
      throw_invalid(where, "q_x must be an int8 or uint8 [N, C, H, W] tensor");
    }
    if (ctx.input_types[1].dtype != DType::kFloat32 || core::shape_numel(ctx.input_types[1].shape) != 1) {
      throw_invalid(where, "x_scale must be one float32");
    }
    if (ctx.input_present(2) &&
        (ctx.input_types[2].dtype != x.dtype || core::shape_numel(ctx.input_types[2].shape) != 1)) {
      throw_invalid(where, "x_zero_point must be one value of q_x's dtype");
    }
    if (w.dtype != DType::kInt8 || w.shape.size() != 4 || w.shape[1] != x.shape[1] || !ctx.input_values[3] ||
        !ctx.input_values[4]) {
      throw_invalid(where, "w_q must be a constant int8 [O, C, kh, kw] weight matching q_x's channels");
    }
    out_channels_ = w.shape[0];
    const int64_t channels = ctx.input_types[4].shape.empty() ? 1 : core::shape_numel(ctx.input_types[4].shape);
    if (ctx.input_types[4].dtype != DType::kFloat32 || ctx.input_types[4].shape.size() > 1 ||
        (channels != 1 && channels != out_channels_)) {
      throw_invalid(where, "w_scale must be float32 with 1 or O values");
    }
    if (ctx.input_present(5) && (ctx.input_types[5].dtype != DType::kFloat32 ||
                                 core::shape_numel(ctx.input_types[5].shape) != out_channels_ || !ctx.input_values[5])) {
      throw_invalid(where, "bias must be a constant float32 of O values");
    }
    kernel_ = {w.shape[2], w.shape[3]};
    strides_ = node_.attr_ints("strides", {1, 1});
    dilations_ = node_.attr_ints("dilations", {1, 1});
    pads_ = node_.attr_ints("pads", {0, 0, 0, 0});
    if (strides_.size() != 2 || dilations_.size() != 2 || pads_.size() != 4) {
      throw_invalid(where, "strides, dilations (2 values) and pads (4 values) must fit a 2-D conv");
    }
    batch_ = x.shape[0];
    channels_ = x.shape[1];
    in_h_ = x.shape[2];
    in_w_ = x.shape[3];
    out_h_ = (in_h_ + pads_[0] + pads_[2] - dilations_[0] * (kernel_[0] - 1) - 1) / strides_[0] + 1;
    out_w_ = (in_w_ + pads_[1] + pads_[3] - dilations_[1] * (kernel_[1] - 1) - 1) / strides_[1] + 1;
    if (out_h_ < 1 || out_w_ < 1 || strides_[0] < 1 || strides_[1] < 1 || dilations_[0] < 1 || dilations_[1] < 1) {
      throw_invalid(where, "the kernel does not fit the padded input");
    }
    return {TensorType{DType::kFloat32, {batch_, out_channels_, out_h_, out_w_}}};
  }

  void prepare(const InferContext& ctx) override {
    const Tensor& w = *ctx.input_values[3];
    const int64_t k = channels_ * kernel_[0] * kernel_[1];
    // [K, O] for the GEMM, K in the im2col's (kh, kw, C) order: w[o, c, i, j] goes to row (i * kw + j) * C + c.
    std::vector<int8_t> transposed(static_cast<std::size_t>(k * out_channels_));
    const int64_t window = kernel_[0] * kernel_[1];
    for (int64_t o = 0; o < out_channels_; ++o) {
      for (int64_t c = 0; c < channels_; ++c) {
        for (int64_t t = 0; t < window; ++t) {
          transposed[static_cast<std::size_t>((t * channels_ + c) * out_channels_ + o)] =
              w.data<int8_t>()[(o * channels_ + c) * window + t];
        }
      }
    }
    pointwise_ = window == 1 && strides_ == std::vector<int64_t>{1, 1} && pads_ == std::vector<int64_t>{0, 0, 0, 0};
    packed_ = PackedInt8Weights(transposed.data(), k, out_channels_, best_int8_isa(ctx.target), ctx.target);
    const Tensor& ws = *ctx.input_values[4];
    w_scale_.assign(ws.data<float>(), ws.data<float>() + ws.numel());
    bias_.assign(static_cast<std::size_t>(out_channels_), 0.0F);
    if (ctx.input_present(5)) std::copy_n(ctx.input_values[5]->data<float>(), out_channels_, bias_.begin());
    const int64_t positions = out_h_ * out_w_;
    gemm_scratch_bytes_ = packed_.scratch_bytes(positions);
  }

  std::size_t scratch_bytes(int threads) const override {
    (void)threads;
    ScratchLayout layout;
    carve(layout);
    return layout.bytes();
  }

  void run(RunContext& ctx) override {
    const Tensor& x = *ctx.inputs[0];
    Tensor& y = *ctx.outputs[0];
    const bool is_signed = x.dtype() == DType::kInt8;
    int32_t zero_point = 0;
    if (ctx.inputs.size() > 2 && ctx.inputs[2]) {
      zero_point = is_signed ? ctx.inputs[2]->data<int8_t>()[0] : ctx.inputs[2]->data<uint8_t>()[0];
    }
    const auto pad_byte = static_cast<uint8_t>(zero_point);  // the zero point's bits, signed or not
    const float x_scale = ctx.inputs[1]->data<float>()[0];
    const int64_t k = channels_ * kernel_[0] * kernel_[1];
    const int64_t positions = out_h_ * out_w_;
    ScratchLayout layout(ctx.scratch);
    const Scratch scratch = carve(layout);
    uint8_t* cols = scratch.cols;
    uint8_t* hwc = scratch.hwc;
    float* gemm_out = scratch.product;
    void* gemm_scratch = scratch.gemm;
    const int64_t plane = in_h_ * in_w_;
    for (int64_t n = 0; n < batch_; ++n) {
      const auto* xs = static_cast<const uint8_t*>(x.raw_data()) + n * channels_ * plane;
      // In blocks of 64 positions: each channel's run of them is read contiguously and the block's
      // channels-last rows (64 x C bytes) stay in L1 while they fill.
      constexpr int64_t kBlock = 64;
      const int64_t blocks = (plane + kBlock - 1) / kBlock;
      ctx.pool.parallel_for(blocks, std::max<int64_t>(1, 256 / std::max<int64_t>(channels_, 1)), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t q0 = b * kBlock, q1 = std::min(plane, q0 + kBlock);
          for (int64_t c = 0; c < channels_; ++c) {
            const uint8_t* from = xs + c * plane;
            for (int64_t q = q0; q < q1; ++q) hwc[q * channels_ + c] = from[q];
          }
        }
      });
      if (!pointwise_) {
        ctx.pool.parallel_for(positions, std::max<int64_t>(1, 16384 / std::max<int64_t>(k, 1)), [&](int64_t begin, int64_t end) {
          for (int64_t p = begin; p < end; ++p) unfold_position(hwc, p, pad_byte, cols + p * k);
        });
      }
      int8_gemm(packed_, pointwise_ ? hwc : cols, is_signed, positions, zero_point, x_scale, w_scale_.data(), w_scale_.size() > 1,
                gemm_out, gemm_scratch, ctx.pool);
      float* out = y.data<float>() + n * out_channels_ * positions;
      const float* g = gemm_out;
      ctx.pool.parallel_for(out_channels_, std::max<int64_t>(1, 16384 / std::max<int64_t>(positions, 1)), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
          const float b = bias_[static_cast<std::size_t>(o)];
          for (int64_t p = 0; p < positions; ++p) out[o * positions + p] = g[p * out_channels_ + o] + b;
        }
      });
    }
  }

 private:
  // The im2col row of output position p: per window tap (i, j), the C channels of the input position
  // it reads (one copy from the channels-last input) or C zero points outside the input.
  void unfold_position(const uint8_t* hwc, int64_t p, uint8_t pad_byte, uint8_t* row) const {
    const int64_t oh = p / out_w_, ow = p % out_w_;
    const auto c = static_cast<std::size_t>(channels_);
    for (int64_t i = 0; i < kernel_[0]; ++i) {
      const int64_t ih = oh * strides_[0] - pads_[0] + i * dilations_[0];
      for (int64_t j = 0; j < kernel_[1]; ++j, row += c) {
        const int64_t iw = ow * strides_[1] - pads_[1] + j * dilations_[1];
        if (ih >= 0 && ih < in_h_ && iw >= 0 && iw < in_w_) {
          std::memcpy(row, hwc + (ih * in_w_ + iw) * channels_, c);
        } else {
          std::memset(row, pad_byte, c);
        }
      }
    }
  }

  onnx::Node node_;
  bool pointwise_ = false;  // 1x1, stride 1, no padding: the channels-last input is the GEMM's A
  std::vector<int64_t> kernel_, strides_, dilations_, pads_;
  int64_t batch_ = 0, channels_ = 0, in_h_ = 0, in_w_ = 0, out_channels_ = 0, out_h_ = 0, out_w_ = 0;
  PackedInt8Weights packed_;
  std::vector<float> w_scale_, bias_;
  std::size_t gemm_scratch_bytes_ = 0;
  // The scratch (planned into the arena): columns (none for pointwise convs), the channels-last input, the
  // GEMM's float product and its activation scratch; sized and carved by the same calls.
  struct Scratch {
    uint8_t* cols;
    uint8_t* hwc;
    float* product;
    std::byte* gemm;
  };
  Scratch carve(ScratchLayout& layout) const {
    Scratch s{};
    const auto columns = static_cast<std::size_t>(out_h_ * out_w_ * channels_ * kernel_[0] * kernel_[1]);
    s.cols = pointwise_ ? nullptr : layout.take<uint8_t>(columns);
    s.hwc = layout.take<uint8_t>(static_cast<std::size_t>(in_h_ * in_w_ * channels_));
    s.product = layout.take<float>(static_cast<std::size_t>(out_h_ * out_w_ * out_channels_));
    s.gemm = layout.take<std::byte>(gemm_scratch_bytes_);
    return s;
  }
};

}  // namespace

std::unique_ptr<Kernel> make_qconv_f(const onnx::Node& node, int opset) {
  (void)opset;
  return std::make_unique<QConvF>(node);
}

}  // namespace detrq::runtime::kernels
