// Tensor storage, views, dtype tables and half-precision conversions.
#include "detrq/core/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "detrq/core/error.h"

using detrq::core::DType;
using detrq::core::Tensor;

TEST(Tensor, ZerosAreAlignedAndZero) {
  Tensor t = Tensor::zeros(DType::kFloat32, {2, 3, 5});
  EXPECT_EQ(t.numel(), 30);
  EXPECT_EQ(t.nbytes(), 120u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % detrq::core::kTensorAlignment, 0u);
  for (float v : t.span<float>()) EXPECT_EQ(v, 0.0F);
}

TEST(Tensor, CopiesShareStorageAndCloneDoesNot) {
  Tensor a = Tensor::from_vector<int64_t>({3}, {1, 2, 3});
  Tensor b = a;
  Tensor c = a.clone();
  a.data<int64_t>()[0] = 42;
  EXPECT_EQ(b.data<int64_t>()[0], 42);
  EXPECT_EQ(c.data<int64_t>()[0], 1);
}

TEST(Tensor, WrongTypedAccessIsAnError) {
  Tensor t = Tensor::zeros(DType::kInt8, {4});
  EXPECT_THROW(t.data<float>(), detrq::Error);
  EXPECT_NO_THROW(t.data<int8_t>());
}

TEST(Tensor, ReshapeKeepsStorageAndChecksCount) {
  Tensor t = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor r = t.reshaped({3, 2});
  EXPECT_EQ(r.raw_data(), t.raw_data());
  EXPECT_EQ(r.dim(0), 3);
  EXPECT_THROW(t.reshaped({4, 2}), detrq::Error);
}

TEST(Tensor, ScalarHasRankZeroAndOneElement) {
  Tensor s = Tensor::scalar<float>(2.5F);
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.data<float>()[0], 2.5F);
}

TEST(Tensor, FromVectorRejectsWrongCount) {
  EXPECT_THROW(Tensor::from_vector<float>({2, 2}, {1, 2, 3}), detrq::Error);
}

TEST(Half, RoundTripsEveryFiniteHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    const float f = detrq::core::half_to_float(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(detrq::core::float_to_half(f), bits) << "half bits " << h;
  }
}

TEST(Half, RoundsToNearestEvenAndSaturatesToInfinity) {
  EXPECT_EQ(detrq::core::float_to_half(1.0F), 0x3C00);
  EXPECT_EQ(detrq::core::float_to_half(65504.0F), 0x7BFF);
  EXPECT_EQ(detrq::core::float_to_half(1e6F), 0x7C00);
  EXPECT_EQ(detrq::core::float_to_half(-1e6F), 0xFC00);
  // 1 + 2^-11 is exactly halfway between 1 and the next half: ties go to even (1.0).
  EXPECT_EQ(detrq::core::float_to_half(1.0F + std::ldexp(1.0F, -11)), 0x3C00);
  EXPECT_TRUE(std::isnan(detrq::core::half_to_float(detrq::core::float_to_half(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(BFloat16, RoundTripsAndRounds) {
  EXPECT_EQ(detrq::core::bfloat16_to_float(detrq::core::float_to_bfloat16(3.0F)), 3.0F);
  EXPECT_EQ(detrq::core::float_to_bfloat16(1.0F), 0x3F80);
  EXPECT_NEAR(detrq::core::bfloat16_to_float(detrq::core::float_to_bfloat16(3.14159F)), 3.14159F, 0.02F);
}
