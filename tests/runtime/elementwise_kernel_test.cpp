// Elementwise kernels (binary with broadcasting, unary math, Where, Cast, Clip) against hand-computed values.
#include <cmath>
#include <limits>

#include "runtime/basic_kernel_test_util.h"
#include "runtime/isa_paths.h"

namespace detrq::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(BinaryKernel, AddSameShapeAndBroadcast) {
  auto y = run(make_node("Add", 2), {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2, 3}, {10, 20, 30, 40, 50, 60})});
  expect_tensor<float>(y[0], {2, 3}, {11, 22, 33, 44, 55, 66});
  y = run(make_node("Add", 2), {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({3}, {10, 20, 30})});
  expect_tensor<float>(y[0], {2, 3}, {11, 22, 33, 14, 25, 36});
  y = run(make_node("Add", 2), {f32({2, 1}, {1, 2}), f32({1, 3}, {10, 20, 30})});
  expect_tensor<float>(y[0], {2, 3}, {11, 21, 31, 12, 22, 32});
  y = run(make_node("Add", 2), {f32({}, {5}), f32({2, 2}, {1, 2, 3, 4})});
  expect_tensor<float>(y[0], {2, 2}, {6, 7, 8, 9});
  // Middle-axis broadcast: [2,1,2] + [1,3,1].
  y = run(make_node("Add", 2), {f32({2, 1, 2}, {1, 2, 3, 4}), f32({1, 3, 1}, {10, 20, 30})});
  expect_tensor<float>(y[0], {2, 3, 2}, {11, 12, 21, 22, 31, 32, 13, 14, 23, 24, 33, 34});
}

TEST(BinaryKernel, LargeBroadcastMatchesScalarLoop) {
  // Big enough to be split across threads, with a row-broadcast second input.
  const int64_t rows = 300, cols = 517;
  std::vector<float> a(rows * cols), b(cols), expect(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) a[i] = static_cast<float>(i % 97) * 0.5F;
  for (int64_t j = 0; j < cols; ++j) b[j] = static_cast<float>(j) - 100.0F;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) expect[i * cols + j] = a[i * cols + j] * b[j];
  auto y = run(make_node("Mul", 2), {f32({rows, cols}, a), f32({1, cols}, b)});
  expect_tensor<float>(y[0], {rows, cols}, expect);
  // Column broadcast: [rows,1] * [rows,cols].
  std::vector<float> c(rows);
  for (int64_t i = 0; i < rows; ++i) c[i] = static_cast<float>(i);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) expect[i * cols + j] = c[i] - a[i * cols + j];
  y = run(make_node("Sub", 2), {f32({rows, 1}, c), f32({rows, cols}, a)});
  expect_tensor<float>(y[0], {rows, cols}, expect);
}

TEST(BinaryKernel, IntegerArithmetic) {
  auto y = run(make_node("Sub", 2), {i64({3}, {5, 0, -7}), i64({1}, {2})});
  expect_tensor<int64_t>(y[0], {3}, {3, -2, -9});
  y = run(make_node("Div", 2), {i64({4}, {7, -7, 7, -7}), i64({4}, {2, 2, -2, -2})});
  expect_tensor<int64_t>(y[0], {4}, {3, -3, -3, 3});  // truncation toward zero, like C and onnxruntime
  auto w = run(make_node("Mul", 2), {tensor<int32_t>({1}, {std::numeric_limits<int32_t>::max()}), tensor<int32_t>({1}, {2})});
  expect_tensor<int32_t>(w[0], {1}, {-2});  // wraps, two's complement
  auto u = run(make_node("Add", 2), {tensor<uint8_t>({2}, {250, 1}), tensor<uint8_t>({2}, {10, 2})});
  expect_tensor<uint8_t>(u[0], {2}, {4, 3});
}

TEST(BinaryKernel, IntegerDivisionByZeroIsAnError) {
  expect_error([] { run(make_node("Div", 2), {i64({2}, {1, 2}), i64({2}, {1, 0})}); }, ErrorKind::kInvalidInput);
  auto y = run(make_node("Div", 2), {f32({2}, {1, -1}), f32({2}, {0, 0})});
  expect_tensor<float>(y[0], {2}, {kInf, -kInf});
}

TEST(BinaryKernel, Pow) {
  auto y = run(make_node("Pow", 2), {f32({3}, {2, 3, 4}), f32({3}, {2, 0.5F, -1})});
  expect_tensor<float>(y[0], {3}, {4, std::sqrt(3.0F), 0.25F});
  y = run(make_node("Pow", 2), {f32({2}, {2, 3}), i64({}, {3})});
  expect_tensor<float>(y[0], {2}, {8, 27});
  auto z = run(make_node("Pow", 2), {i64({3}, {2, -3, 5}), i64({3}, {10, 3, 0})});
  expect_tensor<int64_t>(z[0], {3}, {1024, -27, 1});
  z = run(make_node("Pow", 2), {i64({2}, {4, 9}), f32({1}, {0.5F})});
  expect_tensor<int64_t>(z[0], {2}, {2, 3});
  expect_error([] { run(make_node("Pow", 2), {bools({1}, {1}), f32({1}, {1})}); }, ErrorKind::kInvalidInput);
}

TEST(BinaryKernel, ComparisonsAndLogic) {
  auto y = run(make_node("Equal", 2), {i64({3}, {1, 2, 3}), i64({1}, {2})});
  expect_bools(y[0], {3}, {0, 1, 0});
  y = run(make_node("Equal", 2), {bools({2}, {1, 0}), bools({2}, {1, 1})});
  expect_bools(y[0], {2}, {1, 0});
  y = run(make_node("Greater", 2), {f32({4}, {1, kNaN, kInf, -1}), f32({4}, {0, 0, 1e30F, -1})});
  expect_bools(y[0], {4}, {1, 0, 1, 0});
  y = run(make_node("Less", 2), {f32({2, 1}, {1, 5}), f32({1, 2}, {3, 0})});
  expect_bools(y[0], {2, 2}, {1, 0, 0, 0});
  y = run(make_node("And", 2), {bools({4}, {0, 0, 1, 1}), bools({4}, {0, 1, 0, 1})});
  expect_bools(y[0], {4}, {0, 0, 0, 1});
  y = run(make_node("Or", 2), {bools({2, 2}, {0, 0, 1, 1}), bools({2}, {0, 1})});
  expect_bools(y[0], {2, 2}, {0, 1, 1, 1});
  expect_error([] { run(make_node("Greater", 2), {bools({1}, {1}), bools({1}, {1})}); }, ErrorKind::kInvalidInput);
  expect_error([] { run(make_node("And", 2), {f32({1}, {1}), f32({1}, {1})}); }, ErrorKind::kInvalidInput);
}

TEST(BinaryKernel, RefusesBadInputsNamingTheNode) {
  expect_error([] { run(make_node("Add", 2), {f32({2, 3}, std::vector<float>(6)), f32({2}, {1, 2})}); },
               ErrorKind::kInvalidInput);
  expect_error([] { run(make_node("Add", 2), {f32({1}, {1}), i64({1}, {1})}); }, ErrorKind::kInvalidInput);
  expect_error([] { run(make_node("Add", 2), {f32({1}, {1})}); }, ErrorKind::kInvalidInput);
}

TEST(BinaryKernel, Float16ComputesInFloat) {
  Tensor a = Tensor::empty(DType::kFloat16, {3});
  Tensor b = Tensor::empty(DType::kFloat16, {1});
  const float av[] = {1.5F, -2.0F, 1000.0F};
  for (int i = 0; i < 3; ++i) static_cast<uint16_t*>(a.raw_data())[i] = core::float_to_half(av[i]);
  static_cast<uint16_t*>(b.raw_data())[0] = core::float_to_half(0.25F);
  auto y = run(make_node("Mul", 2), {a, b});
  ASSERT_EQ(y[0].dtype(), DType::kFloat16);
  const uint16_t* p = static_cast<const uint16_t*>(y[0].raw_data());
  EXPECT_EQ(core::half_to_float(p[0]), 0.375F);
  EXPECT_EQ(core::half_to_float(p[1]), -0.5F);
  EXPECT_EQ(core::half_to_float(p[2]), 250.0F);
}

TEST(UnaryKernel, MathFunctions) {
  auto x = f32({4}, {0, 0.5F, -1, 2});
  expect_tensor<float>(run(make_node("Exp"), {x})[0], {4}, {1, std::exp(0.5F), std::exp(-1.0F), std::exp(2.0F)});
  expect_tensor<float>(run(make_node("Erf"), {x})[0], {4}, {0, 0.5204998778F, -0.8427007929F, 0.9953222650F});
  expect_tensor<float>(run(make_node("Cos"), {x})[0], {4}, {1, std::cos(0.5F), std::cos(-1.0F), std::cos(2.0F)});
  expect_tensor<float>(run(make_node("Sin"), {x})[0], {4}, {0, std::sin(0.5F), std::sin(-1.0F), std::sin(2.0F)});
  expect_tensor<float>(run(make_node("Sqrt"), {x})[0], {4}, {0, std::sqrt(0.5F), kNaN, std::sqrt(2.0F)});
  expect_tensor<float>(run(make_node("Log"), {x})[0], {4}, {-kInf, std::log(0.5F), kNaN, std::log(2.0F)});
  expect_tensor<float>(run(make_node("Neg"), {x})[0], {4}, {0, -0.5F, 1, -2});
  expect_tensor<float>(run(make_node("Relu"), {x})[0], {4}, {0, 0.5F, 0, 2});
  auto d = run(make_node("Exp"), {tensor<double>({1}, {1.0})});
  expect_tensor<double>(d[0], {1}, {std::exp(1.0)});
}

TEST(UnaryKernel, SigmoidIsStableAtTheExtremes) {
  auto y = run(make_node("Sigmoid"), {f32({5}, {0, 2, -2, 1000, -1000})});
  expect_tensor<float>(y[0], {5}, {0.5F, 0.8807970780F, 0.1192029220F, 1, 0});
}

// float32 Erf/Exp/Sigmoid use polynomial approximations, built for AVX2+FMA and for any x86-64: sweep
// each build (chosen by a narrowed target, skipped where this CPU lacks it) against double-precision libm.
class VectorizedFloatActivations : public ::testing::TestWithParam<testing::IsaPath> {};

TEST_P(VectorizedFloatActivations, MatchLibm) {
  DETRQ_SKIP_UNLESS_HOST_RUNS(GetParam());
  auto run = [&](const onnx::Node& node, std::vector<Tensor> inputs) {
    testing::KernelCall call{node, 17, std::move(inputs), true, 2, GetParam().target};
    return testing::run_kernel(call);
  };
  std::vector<float> x;
  for (float v = -100.0F; v <= 100.0F; v += 0.0137F) x.push_back(v);
  x.insert(x.end(), {0.0F, -0.0F, 1e-30F, -1e-30F, kInf, -kInf, kNaN});
  const auto n = static_cast<int64_t>(x.size());
  auto in = f32({n}, x);
  const Tensor erf = run(make_node("Erf"), {in})[0];
  const Tensor exp = run(make_node("Exp"), {in})[0];
  const Tensor sig = run(make_node("Sigmoid"), {in})[0];
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[static_cast<std::size_t>(i)];
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(erf.data<float>()[i]) && std::isnan(exp.data<float>()[i]) && std::isnan(sig.data<float>()[i]));
      continue;
    }
    EXPECT_NEAR(erf.data<float>()[i], std::erf(v), 3e-7 + 1e-6 * std::fabs(std::erf(v))) << "erf(" << v << ")";
    const double e = std::exp(v);
    if (e > std::numeric_limits<float>::max()) {
      EXPECT_EQ(exp.data<float>()[i], kInf) << "exp(" << v << ")";
    } else if (e < std::numeric_limits<float>::min()) {  // below the normal range: flushed to 0 is fine
      EXPECT_LE(exp.data<float>()[i], std::numeric_limits<float>::min()) << "exp(" << v << ")";
    } else {
      EXPECT_NEAR(exp.data<float>()[i], e, 4e-7 * e) << "exp(" << v << ")";
    }
    const double s = 1.0 / (1.0 + std::exp(-v));
    EXPECT_NEAR(sig.data<float>()[i], s, 4e-7 * s + 1e-38) << "sigmoid(" << v << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, VectorizedFloatActivations,
                         ::testing::Values(testing::avx2_path(), testing::portable_path()),
                         [](const auto& info) { return info.param.name; });

TEST(UnaryKernel, IntegerAndBoolVariants) {
  expect_tensor<int64_t>(run(make_node("Neg"), {i64({2}, {3, -4})})[0], {2}, {-3, 4});
  expect_tensor<int32_t>(run(make_node("Relu"), {tensor<int32_t>({3}, {-3, 0, 4})})[0], {3}, {0, 0, 4});
  expect_bools(run(make_node("Not"), {bools({2}, {1, 0})})[0], {2}, {0, 1});
  expect_error([] { run(make_node("Erf"), {i64({1}, {1})}); }, ErrorKind::kInvalidInput);
  expect_error([] { run(make_node("Not"), {f32({1}, {1})}); }, ErrorKind::kInvalidInput);
}

TEST(WhereKernel, BroadcastsAllThreeInputs) {
  auto y = run(make_node("Where", 3), {bools({2, 1}, {1, 0}), f32({1, 3}, {1, 2, 3}), f32({}, {-kInf})});
  expect_tensor<float>(y[0], {2, 3}, {1, 2, 3, -kInf, -kInf, -kInf});
  y = run(make_node("Where", 3), {bools({3}, {1, 0, 1}), i64({3}, {1, 2, 3}), i64({3}, {7, 8, 9})});
  expect_tensor<int64_t>(y[0], {3}, {1, 8, 3});
  expect_error([] { run(make_node("Where", 3), {f32({1}, {1}), f32({1}, {1}), f32({1}, {1})}); },
               ErrorKind::kInvalidInput);
}

TEST(CastKernel, ConvertsBetweenTypes) {
  onnx::Node node = make_node("Cast");
  set_int(node, "to", static_cast<int64_t>(DType::kInt64));
  expect_tensor<int64_t>(run(node, {f32({5}, {1.9F, -1.9F, kNaN, 1e30F, 0})})[0], {5},
                         {1, -1, 0, std::numeric_limits<int64_t>::max(), 0});
  set_int(node, "to", static_cast<int64_t>(DType::kFloat32));
  expect_tensor<float>(run(node, {i64({2}, {3, -4})})[0], {2}, {3, -4});
  expect_tensor<float>(run(node, {bools({2}, {1, 0})})[0], {2}, {1, 0});
  set_int(node, "to", static_cast<int64_t>(DType::kBool));
  expect_bools(run(node, {f32({3}, {0, -0.5F, kNaN})})[0], {3}, {0, 1, 1});
  set_int(node, "to", static_cast<int64_t>(DType::kFloat16));
  auto h = run(node, {f32({2}, {1.0F / 3.0F, 70000.0F})});
  ASSERT_EQ(h[0].dtype(), DType::kFloat16);
  EXPECT_NEAR(core::half_to_float(static_cast<const uint16_t*>(h[0].raw_data())[0]), 0.333251953F, 1e-9);
  EXPECT_EQ(core::half_to_float(static_cast<const uint16_t*>(h[0].raw_data())[1]), kInf);
  set_int(node, "to", static_cast<int64_t>(DType::kString));
  expect_error([&] { run(node, {f32({1}, {1})}); }, ErrorKind::kUnsupported);
}

TEST(ClipKernel, AttributesAndInputs) {
  onnx::Node old = make_node("Clip");
  set_float(old, "min", -1);
  set_float(old, "max", 1);
  expect_tensor<float>(run(old, {f32({4}, {-2, 0.5F, 3, kNaN})}, 6)[0], {4}, {-1, 0.5F, 1, kNaN});
  expect_tensor<float>(run(make_node("Clip", 3), {f32({3}, {-2, 0.5F, 3}), f32({}, {0}), f32({}, {1})})[0], {3},
                       {0, 0.5F, 1});
  // Only max given: min omitted.
  expect_tensor<float>(run(make_node("Clip", 3), {f32({3}, {-2, 0.5F, 3}), Tensor(), f32({}, {1})})[0], {3},
                       {-2, 0.5F, 1});
  expect_tensor<int64_t>(run(make_node("Clip", 2), {i64({3}, {-5, 5, 50}), i64({}, {0})})[0], {3}, {0, 5, 50});
  expect_error([] { run(make_node("Clip", 2), {f32({1}, {1}), f32({2}, {0, 1})}); }, ErrorKind::kInvalidInput);
}

}  // namespace
}  // namespace detrq::testing

namespace detrq::testing {
namespace {

TEST(VariadicKernel, MaxMinSumMeanBroadcast) {
  auto a = f32({2, 2}, {1, 5, -3, 8});
  auto b = f32({2}, {2, 4});
  auto c = f32({}, {3});
  expect_tensor<float>(run(make_node("Max", 3), {a, b, c})[0], {2, 2}, {3, 5, 3, 8});
  expect_tensor<float>(run(make_node("Min", 2), {a, b})[0], {2, 2}, {1, 4, -3, 4});
  expect_tensor<float>(run(make_node("Sum", 3), {a, b, c})[0], {2, 2}, {6, 12, 2, 15});
  expect_tensor<float>(run(make_node("Mean", 2), {a, b})[0], {2, 2}, {1.5F, 4.5F, -0.5F, 6});
  expect_tensor<int64_t>(run(make_node("Max", 1), {i64({2}, {4, -4})})[0], {2}, {4, -4});
  expect_tensor<float>(run(make_node("Max", 2), {f32({2}, {1, kNaN}), f32({2}, {kNaN, 1})})[0], {2}, {kNaN, kNaN});
  expect_error([] { run(make_node("Max", 2), {f32({2}, {1, 2}), f32({3}, {1, 2, 3})}); }, ErrorKind::kInvalidInput);
}

TEST(BinaryKernel, ModFollowsTheDivisorOrDividendSign) {
  expect_tensor<int64_t>(run(make_node("Mod", 2), {i64({4}, {7, -7, 7, -7}), i64({4}, {3, 3, -3, -3})})[0], {4},
                         {1, 2, -2, -1});
  onnx::Node fmod = make_node("Mod", 2);
  set_int(fmod, "fmod", 1);
  expect_tensor<float>(run(fmod, {f32({2}, {7.5F, -7.5F}), f32({2}, {2, 2})})[0], {2}, {1.5F, -1.5F});
  expect_error([] { run(make_node("Mod", 2), {f32({1}, {1}), f32({1}, {1})}); }, ErrorKind::kInvalidInput);
  expect_error([] { run(make_node("Mod", 2), {i64({1}, {1}), i64({1}, {0})}); }, ErrorKind::kInvalidInput);
}

TEST(UnaryKernel, RoundSignSoftplusAndParametricActivations) {
  expect_tensor<float>(run(make_node("Round"), {f32({4}, {0.5F, 1.5F, -2.5F, 2.6F})})[0], {4}, {0, 2, -2, 3});
  expect_tensor<float>(run(make_node("Sign"), {f32({3}, {-2, 0, 3})})[0], {3}, {-1, 0, 1});
  expect_tensor<float>(run(make_node("Softplus"), {f32({3}, {0, 100, -100})})[0], {3}, {std::log(2.0F), 100, 0});
  onnx::Node leaky = make_node("LeakyRelu");
  set_float(leaky, "alpha", 0.1F);
  expect_tensor<float>(run(leaky, {f32({2}, {-2, 3})})[0], {2}, {-0.2F, 3});
  expect_tensor<float>(run(make_node("HardSigmoid"), {f32({3}, {-10, 0, 10})})[0], {3}, {0, 0.5F, 1});
  expect_tensor<float>(run(make_node("Elu"), {f32({2}, {-1, 2})})[0], {2}, {std::exp(-1.0F) - 1, 2});
  expect_bools(run(make_node("IsNaN"), {f32({3}, {kNaN, kInf, 0})})[0], {3}, {1, 0, 0});
  onnx::Node isinf = make_node("IsInf");
  set_int(isinf, "detect_negative", 0);
  expect_bools(run(isinf, {f32({3}, {kNaN, kInf, -kInf})})[0], {3}, {0, 1, 0});
}

TEST(CastKernel, CastLikeTakesTheSecondInputsType) {
  auto y = run(make_node("CastLike", 2), {f32({2}, {1.7F, -2.2F}), i64({1}, {0})});
  expect_tensor<int64_t>(y[0], {2}, {1, -2});
}

}  // namespace
}  // namespace detrq::testing
