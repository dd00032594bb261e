// QuantizeLinear and DequantizeLinear kernels through the kernel harness: rounding half to even,
// saturation, per-axis scales, zero points, and errors for mismatched scales.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "detrq/runtime/quantize.h"
#include "runtime/kernel_harness.h"

using detrq::core::DType;
using detrq::core::Tensor;
using detrq::testing::KernelCall;
using detrq::testing::run_kernel;

namespace {
detrq::onnx::Node node(const std::string& op, int64_t axis = 1) {
  detrq::onnx::Node n;
  n.op_type = op;
  n.name = op + "_test";
  detrq::onnx::Attribute a;
  a.kind = detrq::onnx::Attribute::Kind::kInt;
  a.i = axis;
  n.attributes["axis"] = a;
  return n;
}
}  // namespace

TEST(QuantizeLinear, RoundsHalfToEvenAndSaturatesInt8) {
  KernelCall call{node("QuantizeLinear"), 13,
                  {Tensor::from_vector<float>({10}, {0.5F, 1.5F, 2.5F, -0.5F, -1.5F, -2.5F, 1000.0F, -1000.0F,
                                                     std::numeric_limits<float>::infinity(), 0.26F}),
                   Tensor::scalar<float>(0.5F), Tensor::scalar<int8_t>(0)}};
  auto y = run_kernel(call);
  ASSERT_EQ(y[0].dtype(), DType::kInt8);
  std::vector<int8_t> got(y[0].span<int8_t>().begin(), y[0].span<int8_t>().end());
  // x / 0.5: 1, 3, 5, -1, -3, -5 exactly; 0.52 rounds to 1.
  EXPECT_EQ(got, (std::vector<int8_t>{1, 3, 5, -1, -3, -5, 127, -128, 127, 1}));

  KernelCall halves{node("QuantizeLinear"), 13,
                    {Tensor::from_vector<float>({6}, {0.5F, 1.5F, 2.5F, 3.5F, -2.5F, -3.5F}), Tensor::scalar<float>(1.0F),
                     Tensor::scalar<int8_t>(0)}};
  auto h = run_kernel(halves);
  std::vector<int8_t> hv(h[0].span<int8_t>().begin(), h[0].span<int8_t>().end());
  EXPECT_EQ(hv, (std::vector<int8_t>{0, 2, 2, 4, -2, -4}));
}

TEST(QuantizeLinear, DefaultsToUint8WithZeroPoint) {
  KernelCall call{node("QuantizeLinear"), 13,
                  {Tensor::from_vector<float>({4}, {-1.0F, 0.0F, 1.0F, 300.0F}), Tensor::scalar<float>(0.1F)}};
  auto y = run_kernel(call);
  ASSERT_EQ(y[0].dtype(), DType::kUInt8);
  EXPECT_EQ(y[0].data<uint8_t>()[0], 0);  // -10 saturates at 0
  EXPECT_EQ(y[0].data<uint8_t>()[2], 10);
  EXPECT_EQ(y[0].data<uint8_t>()[3], 255);

  KernelCall with_zp{node("QuantizeLinear"), 13,
                     {Tensor::from_vector<float>({3}, {-1.0F, 0.0F, 1.0F}), Tensor::scalar<float>(0.1F),
                      Tensor::scalar<uint8_t>(128)}};
  auto z = run_kernel(with_zp);
  EXPECT_EQ(z[0].data<uint8_t>()[0], 118);
  EXPECT_EQ(z[0].data<uint8_t>()[1], 128);
  EXPECT_EQ(z[0].data<uint8_t>()[2], 138);
}

TEST(QuantizeLinear, PerAxisUsesOneScalePerChannel) {
  // x: [2, 3, 2], channels along axis 1 (and the same with axis -2).
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i) x[i] = static_cast<float>(i);
  for (int64_t axis : {1, -2}) {
    KernelCall call{node("QuantizeLinear", axis), 13,
                    {Tensor::from_vector<float>({2, 3, 2}, x), Tensor::from_vector<float>({3}, {1.0F, 2.0F, 4.0F}),
                     Tensor::from_vector<int8_t>({3}, {0, 1, -1})}};
    auto y = run_kernel(call);
    std::vector<int8_t> got(y[0].span<int8_t>().begin(), y[0].span<int8_t>().end());
    // channel 0: x/1; channel 1: x/2 + 1 (1.5 -> 2, 4.5 -> 4); channel 2: x/4 - 1 (2.5 -> 2, 2.75 -> 3).
    EXPECT_EQ(got, (std::vector<int8_t>{0, 1, 2, 3, 0, 0, 6, 7, 5, 5, 1, 2})) << "axis " << axis;
  }
}

TEST(QuantizeLinear, RejectsAScaleThatDoesNotFitTheAxis) {
  KernelCall call{node("QuantizeLinear", 0), 13,
                  {Tensor::zeros(DType::kFloat32, {2, 3}), Tensor::from_vector<float>({3}, {1, 1, 1})}};
  EXPECT_THROW(run_kernel(call), detrq::Error);
  KernelCall bad_axis{node("QuantizeLinear", 5), 13,
                      {Tensor::zeros(DType::kFloat32, {2, 3}), Tensor::from_vector<float>({3}, {1, 1, 1})}};
  EXPECT_THROW(run_kernel(bad_axis), detrq::Error);
}

// What weight folding computes ahead (Q/DQ fusion, the CPU engine) and what the kernel computes at run time,
// both against codes written out by hand from ONNX's definition, saturate(round_half_to_even(x / scale) + zp)
// in float32: per tensor and per axis, int8 and uint8, halves, saturation, infinities, and NaN (which ONNX
// leaves undefined for integer outputs; detrq gives the zero point).
TEST(QuantizeConstant, KernelAndFoldingGiveTheOnnxCodes) {
  // x = -9, -8.25, ..., 8.25 in steps of 0.75, with NaN at 3, +inf at 7 and 1e6 at 11; shape [2, 3, 4].
  std::vector<float> x(24);
  for (int i = 0; i < 24; ++i) x[i] = static_cast<float>(i - 12) * 0.75F;
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[7] = std::numeric_limits<float>::infinity();
  x[11] = 1e6F;
  const Tensor xt = Tensor::from_vector<float>({2, 3, 4}, x);
  struct Case {
    int64_t axis;
    Tensor scale;
    std::optional<Tensor> zero_point;
    std::vector<int> codes;
  };
  const Case cases[] = {
      // x / 0.5 + 3: -8.25 -> -16.5 -> -16 (half to even) -> -13; NaN -> 3; inf and 1e6 saturate at 127.
      {1, Tensor::scalar<float>(0.5F), Tensor::scalar<int8_t>(3),
       {-15, -13, -12, 3, -9, -7, -6, 127, -3, -1, 0, 127, 3, 5, 6, 7, 9, 11, 12, 13, 15, 17, 18, 19}},
      // uint8 by default: negatives saturate at 0, NaN is the zero point 0.
      {1, Tensor::scalar<float>(0.25F), std::nullopt,
       {0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 255, 0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33}},
      // per channel of axis 1 (4 values each): x / 0.5 + 0, x / 1 - 4, x / 0.25 + 7.
      {1, Tensor::from_vector<float>({3}, {0.5F, 1.0F, 0.25F}), Tensor::from_vector<int8_t>({3}, {0, -4, 7}),
       {-18, -16, -15, 0, -10, -9, -8, 127, -5, -2, 1, 127, 0, 2, 3, 4, -1, 0, 0, 1, 31, 34, 37, 40}},
      // axis 0, uint8: x / 0.5 + 128, then x / 2 + 10 (0.375 -> 0, 1.125 -> 1, 1.5 -> 2, 2.25 -> 2).
      {0, Tensor::from_vector<float>({2}, {0.5F, 2.0F}), Tensor::from_vector<uint8_t>({2}, {128, 10}),
       {110, 112, 113, 128, 116, 118, 119, 255, 122, 124, 125, 255, 10, 10, 11, 11, 12, 12, 12, 13, 13, 13, 14, 14}},
      // axis 2, the innermost: -8.25 / 1.5 = -5.5 -> -6, + 2 = -4; -7.5 / 0.1f rounds to -75 in float32.
      {2, Tensor::from_vector<float>({4}, {0.5F, 1.5F, 0.1F, 3.0F}), Tensor::from_vector<int8_t>({4}, {1, 2, 3, 4}),
       {-17, -4, -72, 4, -11, -2, -42, 127, -5, 0, -12, 127, 1, 2, 18, 5, 7, 4, 48, 6, 13, 6, 78, 7}},
  };
  auto codes_of = [](const Tensor& t) {
    std::vector<int> out;
    for (int64_t i = 0; i < t.numel(); ++i) {
      out.push_back(t.dtype() == DType::kInt8 ? int{t.data<int8_t>()[i]} : int{t.data<uint8_t>()[i]});
    }
    return out;
  };
  for (const Case& c : cases) {
    std::vector<Tensor> inputs{xt, c.scale};
    if (c.zero_point) inputs.push_back(*c.zero_point);
    const auto kernel = run_kernel(KernelCall{node("QuantizeLinear", c.axis), 13, inputs});
    const DType want_type = c.zero_point ? c.zero_point->dtype() : DType::kUInt8;
    ASSERT_EQ(kernel[0].dtype(), want_type) << "axis " << c.axis;
    EXPECT_EQ(codes_of(kernel[0]), c.codes) << "kernel, axis " << c.axis;
    const Tensor folded =
        detrq::runtime::quantize_constant(xt, c.scale, c.zero_point ? &*c.zero_point : nullptr, c.axis);
    ASSERT_EQ(folded.dtype(), want_type) << "axis " << c.axis;
    EXPECT_EQ(codes_of(folded), c.codes) << "folded, axis " << c.axis;
  }
  EXPECT_THROW(detrq::runtime::quantize_constant(xt, Tensor::from_vector<float>({3}, {1, 1, 1}), nullptr, 0),
               std::invalid_argument);
}

TEST(DequantizeLinear, InvertsQuantizationPerTensorAndPerAxis) {
  KernelCall call{node("DequantizeLinear"), 13,
                  {Tensor::from_vector<int8_t>({4}, {-128, -1, 0, 127}), Tensor::scalar<float>(0.5F),
                   Tensor::scalar<int8_t>(-1)}};
  auto y = run_kernel(call);
  ASSERT_EQ(y[0].dtype(), DType::kFloat32);
  std::vector<float> got(y[0].span<float>().begin(), y[0].span<float>().end());
  EXPECT_EQ(got, (std::vector<float>{-63.5F, 0.0F, 0.5F, 64.0F}));

  KernelCall axis0{node("DequantizeLinear", 0), 13,
                   {Tensor::from_vector<int8_t>({2, 2}, {1, 2, 3, 4}), Tensor::from_vector<float>({2}, {1.0F, 0.25F})}};
  auto w = run_kernel(axis0);
  std::vector<float> wv(w[0].span<float>().begin(), w[0].span<float>().end());
  EXPECT_EQ(wv, (std::vector<float>{1.0F, 2.0F, 0.75F, 1.0F}));

  KernelCall i32{node("DequantizeLinear"), 13,
                 {Tensor::from_vector<int32_t>({2}, {-100000, 7}), Tensor::scalar<float>(0.5F)}};
  auto b = run_kernel(i32);
  EXPECT_EQ(b[0].data<float>()[0], -50000.0F);
  EXPECT_EQ(b[0].data<float>()[1], 3.5F);
}

TEST(DequantizeLinear, LargeTensorsSplitOverThreadsGiveTheSameResult) {
  const int64_t n = 3 * 70000;
  std::vector<float> x(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = std::sin(static_cast<float>(i)) * 3.0F;
  KernelCall q{node("QuantizeLinear"), 13,
               {Tensor::from_vector<float>({1, 3, n / 3}, x), Tensor::from_vector<float>({3}, {0.03F, 0.02F, 0.05F}),
                Tensor::from_vector<int8_t>({3}, {0, 0, 0})}};
  auto qy = run_kernel(q);
  KernelCall dq{node("DequantizeLinear"), 13,
                {qy[0], Tensor::from_vector<float>({3}, {0.03F, 0.02F, 0.05F}), Tensor::from_vector<int8_t>({3}, {0, 0, 0})}};
  dq.threads = 3;
  auto back = run_kernel(dq);
  const float scales[3] = {0.03F, 0.02F, 0.05F};
  for (int64_t i = 0; i < n; ++i) {
    const float s = scales[i / (n / 3)];
    const float clipped = std::clamp(x[static_cast<std::size_t>(i)], -128 * s, 127 * s);
    ASSERT_NEAR(back[0].data<float>()[i], clipped, s / 2 + 1e-6F) << i;
  }
}

TEST(DequantizeLinear, RefusesFloatInputs) {
  KernelCall call{node("DequantizeLinear"), 13, {Tensor::zeros(DType::kFloat32, {2}), Tensor::scalar<float>(1.0F)}};
  EXPECT_THROW(run_kernel(call), detrq::Error);
}
