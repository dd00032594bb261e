// Tests of the compute kernels (MatMul, Gemm, Conv, LayerNormalization, Softmax, ...) against
// straightforward references, through the same infer/prepare/run calls the Session makes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "runtime/compute_reference.h"
#include "runtime/isa_paths.h"
#include "runtime/kernel_harness.h"
#include "runtime/kernels/elementwise/float_activations.h"
#include "runtime/kernels/gemm/gemm.h"
#include "runtime/kernels/math/vector_math.h"

namespace detrq {
namespace {

using core::DType;
using core::Shape;
using core::Tensor;
using testing::KernelCall;
using testing::random_tensor;
using testing::run_kernel;

onnx::Node make_node(const std::string& op, int inputs, int outputs = 1) {
  onnx::Node node;
  node.op_type = op;
  node.name = op + "_test";
  for (int i = 0; i < inputs; ++i) node.inputs.push_back("in" + std::to_string(i));
  for (int i = 0; i < outputs; ++i) node.outputs.push_back("out" + std::to_string(i));
  return node;
}
KernelCall call_for(onnx::Node node) {
  KernelCall call;
  call.node = std::move(node);
  return call;
}
void set_int(onnx::Node& n, const std::string& key, int64_t v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInt;
  a.i = v;
  n.attributes[key] = a;
}
void set_float(onnx::Node& n, const std::string& key, float v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kFloat;
  a.f = v;
  n.attributes[key] = a;
}
void set_ints(onnx::Node& n, const std::string& key, std::vector<int64_t> v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInts;
  a.ints = std::move(v);
  n.attributes[key] = a;
}
void set_string(onnx::Node& n, const std::string& key, const std::string& v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kString;
  a.s = v;
  n.attributes[key] = a;
}

// C = A(MxK) * B(KxN) in double, both row-major.
std::vector<double> matmul_ref(const float* a, const float* b, int64_t m, int64_t n, int64_t k) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += static_cast<double>(a[i * k + p]) * b[p * n + j];
  return c;
}

// ---- GEMM core --------------------------------------------------------------------------------

using testing::IsaPath;

// Every micro-kernel against the reference, each chosen by a target narrowed to what it needs (skipped,
// saying why, where this CPU lacks it; never silently another). AVX-512 runs its 12 x 32 tile where whole
// tiles of it fit (pairs of whole panels, rows read in place) and the AVX2 tile on the rest: sizes cover
// both, alone and mixed.
class SgemmTest : public ::testing::TestWithParam<IsaPath> {
 protected:
  void SetUp() override {
    DETRQ_SKIP_UNLESS_HOST_RUNS(GetParam());
    ASSERT_EQ(runtime::kernels::sgemm_isa(target()), GetParam().name);
  }
  const runtime::CpuTarget& target() const { return GetParam().target; }
};

TEST_P(SgemmTest, MatchesReferenceOnEdgeSizesAndTransposes) {
  core::ThreadPool pool(2);
  const int64_t sizes[][3] = {{1, 1, 1},      {7, 17, 5},     {6, 16, 256},  {14, 16, 257},
                              {13, 33, 300},  {100, 40, 513}, {97, 130, 64}, {250, 530, 70},
                              {24, 64, 40},   {36, 96, 512}};
  uint32_t seed = 1;
  for (const auto& s : sizes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    for (int trans = 0; trans < 4; ++trans) {
      const bool ta = trans & 1, tb = trans & 2;
      Tensor a = random_tensor({m, k}, seed++), b = random_tensor({k, n}, seed++);
      // Store transposed copies where the operand is to be read transposed.
      Tensor at = Tensor::empty(DType::kFloat32, {k, m}), bt = Tensor::empty(DType::kFloat32, {n, k});
      for (int64_t i = 0; i < m; ++i)
        for (int64_t p = 0; p < k; ++p) at.data<float>()[p * m + i] = a.data<float>()[i * k + p];
      for (int64_t p = 0; p < k; ++p)
        for (int64_t j = 0; j < n; ++j) bt.data<float>()[j * k + p] = b.data<float>()[p * n + j];
      runtime::kernels::MatrixView<float> av = ta ? runtime::kernels::MatrixView<float>{at.data<float>(), 1, m}
                                                  : runtime::kernels::MatrixView<float>{a.data<float>(), k, 1};
      runtime::kernels::MatrixView<float> bv = tb ? runtime::kernels::MatrixView<float>{bt.data<float>(), 1, k}
                                                  : runtime::kernels::MatrixView<float>{b.data<float>(), n, 1};
      Tensor c = random_tensor({m, n}, seed++);
      Tensor c0 = c.clone();
      runtime::kernels::sgemm(m, n, k, 0.5F, av, bv, true, c.data<float>(), n, &pool, target());
      std::vector<double> ref = matmul_ref(a.data<float>(), b.data<float>(), m, n, k);
      for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = 0.5 * ref[i] + c0.data<float>()[i];
      EXPECT_LT(testing::max_abs_diff(c, ref), 1e-4) << m << "x" << n << "x" << k << " trans " << trans;
    }
  }
}

// The fused epilogue (bias per row, bias per column, GELU, scale per column, residual; with and without
// the row bias, scale and residual) on every tile shape (whole tiles apply it on registers, partial ones
// after the copy), a K spanning several depth blocks (the epilogue must run once, after the last) and an
// empty K (biases and GELU of zeros).
TEST_P(SgemmTest, EpilogueAddsBiasThenGelu) {
  core::ThreadPool pool(2);
  const int64_t sizes[][3] = {{1, 1, 1}, {15, 17, 600}, {29, 40, 7}, {3, 5, 0}, {28, 48, 300}};
  uint32_t seed = 100;
  for (const auto& s : sizes) {
    for (const int variant : {0, 1, 2}) {  // bias + GELU; + row bias; + row bias, scale and residual
      const int64_t m = s[0], n = s[1], k = s[2];
      Tensor a = random_tensor({m, std::max<int64_t>(k, 1)}, seed++), b = random_tensor({std::max<int64_t>(k, 1), n}, seed++);
      Tensor bias = random_tensor({n}, seed++), row_bias = random_tensor({m}, seed++);
      Tensor scale = random_tensor({n}, seed++), residual = random_tensor({m, n}, seed++);
      runtime::kernels::PackedMatrixB packed;
      packed.pack(k, n, runtime::kernels::MatrixView<float>{b.data<float>(), n, 1});
      Tensor c = Tensor::empty(DType::kFloat32, {m, n});
      runtime::kernels::SgemmItem item{runtime::kernels::MatrixView<float>{a.data<float>(), std::max<int64_t>(k, 1), 1},
                                       &packed, c.data<float>(),
                                       {bias.data<float>(), runtime::kernels::GemmActivation::kGeluErf,
                                        variant > 0 ? row_bias.data<float>() : nullptr,
                                        variant > 1 ? scale.data<float>() : nullptr,
                                        variant > 1 ? residual.data<float>() : nullptr}};
      runtime::kernels::sgemm_packed(m, n, k, 1.0F, false, std::span(&item, 1), n, &pool, target());
      std::vector<double> ref(static_cast<std::size_t>(m * n), 0.0);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double v = double(bias.data<float>()[j]) + (variant > 0 ? row_bias.data<float>()[i] : 0.0);
          for (int64_t p = 0; p < k; ++p) v += double(a.data<float>()[i * k + p]) * b.data<float>()[p * n + j];
          v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
          if (variant > 1) v = v * scale.data<float>()[j] + residual.data<float>()[i * n + j];
          ref[static_cast<std::size_t>(i * n + j)] = v;
        }
      }
      EXPECT_LT(testing::max_abs_diff(c, ref), 1e-4) << m << "x" << n << "x" << k << " variant " << variant;
    }
  }
}

// Both depth blockings against the reference: weights' fixed kGemmKc blocks (the layout engine files
// store: K = 257 is 256 + 1) and the per-run blocks (257 in one, 1028 in four of 257), with C accumulated.
// Operands packed in different blockings cannot share one call.
TEST_P(SgemmTest, WeightAndPerRunDepthBlocks) {
  using runtime::kernels::depth_block_per_run;
  EXPECT_EQ(depth_block_per_run(64), 64);
  EXPECT_EQ(depth_block_per_run(257), 257);
  EXPECT_EQ(depth_block_per_run(384), 192);
  EXPECT_EQ(depth_block_per_run(1028), 257);
  core::ThreadPool pool(2);
  uint32_t seed = 300;
  for (const int64_t k : {257, 1028, 1536}) {
    const int64_t m = 20, n = 37;
    Tensor a = random_tensor({m, k}, seed++), b = random_tensor({k, n}, seed++);
    const std::vector<double> ref = matmul_ref(a.data<float>(), b.data<float>(), m, n, k);
    for (const int64_t kc : {runtime::kernels::kGemmKc, depth_block_per_run(k)}) {
      runtime::kernels::PackedMatrixB packed;
      packed.pack(k, n, runtime::kernels::MatrixView<float>{b.data<float>(), n, 1}, &pool, kc);
      EXPECT_EQ(packed.kc(), kc);
      Tensor c = Tensor::empty(DType::kFloat32, {m, n});
      std::fill_n(c.data<float>(), m * n, 1.0F);
      const runtime::kernels::SgemmItem item{runtime::kernels::MatrixView<float>{a.data<float>(), k, 1}, &packed,
                                             c.data<float>()};
      runtime::kernels::sgemm_packed(m, n, k, 1.0F, true, std::span(&item, 1), n, &pool, target());
      std::vector<double> expected = ref;
      for (double& v : expected) v += 1.0;
      EXPECT_LT(testing::max_abs_diff(c, expected), 1e-3) << "k " << k << " kc " << kc;
    }
  }
  runtime::kernels::PackedMatrixB weights, per_run;
  Tensor b = random_tensor({257, 16}, seed++), a = random_tensor({6, 257}, seed++);
  weights.pack(257, 16, runtime::kernels::MatrixView<float>{b.data<float>(), 16, 1});
  per_run.pack(257, 16, runtime::kernels::MatrixView<float>{b.data<float>(), 16, 1}, nullptr, 257);
  Tensor c = Tensor::empty(DType::kFloat32, {12, 16});
  const runtime::kernels::SgemmItem items[] = {
      {runtime::kernels::MatrixView<float>{a.data<float>(), 257, 1}, &weights, c.data<float>()},
      {runtime::kernels::MatrixView<float>{a.data<float>(), 257, 1}, &per_run, c.data<float>() + 96}};
  EXPECT_THROW(runtime::kernels::sgemm_packed(6, 16, 257, 1.0F, false, items, 16, &pool, target()),
               std::invalid_argument);
  EXPECT_THROW(weights.pack(4, 4, runtime::kernels::MatrixView<float>{b.data<float>(), 4, 1}, nullptr, 0),
               std::invalid_argument);
}

// The epilogue's GELU against the exact x * (1 + erf(x / sqrt 2)) / 2 on a dense sweep (both signs, the
// region near 0 where only absolute accuracy matters, the tails where Phi rounds to 0 or 1) and on the
// special values.
// Softmax rows on each path (AVX-512, AVX2, portable; by target, skipped where this CPU lacks it): widths
// around each vector width and the attention widths, masked (-inf) logits giving exactly 0, and a row of
// -inf only giving NaN.
class SoftmaxRow : public ::testing::TestWithParam<IsaPath> {};

TEST_P(SoftmaxRow, MatchesTheDefinition) {
  DETRQ_SKIP_UNLESS_HOST_RUNS(GetParam());
  const runtime::CpuTarget& target = GetParam().target;
  ASSERT_EQ(runtime::kernels::vector_math_path(target), GetParam().name);
  uint32_t seed = 7;
  for (const int64_t n : {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 257, 1028}) {
    Tensor x = random_tensor({n}, seed++);
    std::vector<float> row(x.data<float>(), x.data<float>() + n);
    for (float& v : row) v *= 20.0F;  // logits far apart: some exps near the underflow
    if (n > 3) row[2] = -std::numeric_limits<float>::infinity();
    std::vector<float> y(static_cast<std::size_t>(n));
    runtime::kernels::softmax_row(row.data(), y.data(), n, target);
    double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (const float v : row) mx = std::max(mx, double(v));
    for (const float v : row) sum += std::exp(double(v) - mx);
    for (int64_t i = 0; i < n; ++i) {
      if (n > 3 && i == 2) continue;  // the masked logit, checked below
      const double arg = double(row[static_cast<std::size_t>(i)]) - mx;
      const double expected = std::exp(arg) / sum;
      // Relative: the polynomial's 2e-7 and the float rounding of x - max (half an ulp of |arg|).
      EXPECT_NEAR(y[static_cast<std::size_t>(i)], expected, (1e-6 + 1.2e-7 * std::abs(arg)) * expected + 1e-37)
          << "n " << n << " i " << i;
    }
    if (n > 3) {
      EXPECT_EQ(y[2], 0.0F);
    }
    // exp_minus_max_row leaves the division to the caller and returns the sum.
    const float s = runtime::kernels::exp_minus_max_row(row.data(), y.data(), n, target);
    EXPECT_NEAR(s, sum, 1e-5 * sum) << "n " << n;
  }
  std::vector<float> masked(20, -std::numeric_limits<float>::infinity());
  runtime::kernels::softmax_row(masked.data(), masked.data(), 20, target);
  for (const float v : masked) EXPECT_TRUE(std::isnan(v));
}

INSTANTIATE_TEST_SUITE_P(Isa, SoftmaxRow,
                         ::testing::Values(testing::avx512_path(), testing::avx2_path(), testing::portable_path()),
                         [](const auto& info) { return info.param.name; });

// The AVX-512 and AVX2 paths give the same bits (values and sums): a softmax that rounds differently on
// another CPU can reorder a near-tie top-k downstream (RF-DETR's two-stage query selection). Needs both.
TEST(SoftmaxRowPaths, VectorPathsAgreeBitForBit) {
  const IsaPath wide = testing::avx512_path(), narrow = testing::avx2_path();
  DETRQ_SKIP_UNLESS_HOST_RUNS(wide);
  ASSERT_EQ(runtime::kernels::vector_math_path(wide.target), std::string("avx512"));
  ASSERT_EQ(runtime::kernels::vector_math_path(narrow.target), std::string("avx2"));
  uint32_t seed = 40;
  for (const int64_t n : {5, 16, 24, 33, 257, 1028}) {
    Tensor x = random_tensor({n}, seed++);
    std::vector<float> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n));
    const float sa = runtime::kernels::exp_minus_max_row(x.data<float>(), a.data(), n, wide.target);
    const float sb = runtime::kernels::exp_minus_max_row(x.data<float>(), b.data(), n, narrow.target);
    EXPECT_EQ(sa, sb) << "n " << n;
    EXPECT_EQ(a, b) << "n " << n;
  }
}

// GELU with fused multiply-adds (targets with AVX2 and FMA) and without (any other), each against the
// exact function.
class GeluErf : public ::testing::TestWithParam<IsaPath> {};

TEST_P(GeluErf, MatchesExactFunctionAndSpecialValues) {
  DETRQ_SKIP_UNLESS_HOST_RUNS(GetParam());
  const runtime::CpuTarget& target = GetParam().target;
  ASSERT_EQ(runtime::kernels::gelu_uses_fma(target), GetParam().name == "fma");
  std::vector<float> x;
  for (int i = -200000; i <= 200000; ++i) x.push_back(static_cast<float>(i) * 1e-4F);  // [-20, 20]
  for (float v : {1e-30F, -1e-30F, 3e-39F, 1e6F, -1e6F, 3e38F, -3e38F}) x.push_back(v);
  std::vector<float> y(x.size());
  runtime::kernels::gelu_erf_f32(x.data(), y.data(), static_cast<int64_t>(x.size()), target);
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double exact = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    worst = std::max(worst, std::abs(y[i] - exact) / std::max(1.0, std::abs(v)));
  }
  EXPECT_LT(worst, 2e-7);
  const float inf = std::numeric_limits<float>::infinity();
  float special[] = {inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.0F, -0.0F};
  runtime::kernels::gelu_erf_f32(special, special, 5, target);  // in place, as the epilogue calls it
  EXPECT_EQ(special[0], inf);
  EXPECT_TRUE(std::isnan(special[1]));
  EXPECT_TRUE(std::isnan(special[2]));
  EXPECT_EQ(special[3], 0.0F);
  EXPECT_EQ(special[4], 0.0F);
}

INSTANTIATE_TEST_SUITE_P(Isa, GeluErf,
                         ::testing::Values(IsaPath{"fma", testing::avx2_path().target}, IsaPath{"plain", {}}),
                         [](const auto& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(Isa, SgemmTest,
                         ::testing::Values(testing::avx512_path(), testing::avx2_path(), testing::portable_path()),
                         [](const auto& info) { return info.param.name; });

// ---- MatMul -----------------------------------------------------------------------------------

struct MatMulCase {
  Shape a, b, out;
};

class MatMulShapes : public ::testing::TestWithParam<MatMulCase> {};

TEST_P(MatMulShapes, BroadcastsAndMatchesReference) {
  const MatMulCase& tc = GetParam();
  for (bool constant : {false, true}) {
    KernelCall call = call_for(make_node("MatMul", 2));
    call.inputs = {random_tensor(tc.a, 3), random_tensor(tc.b, 4)};
    call.inputs_constant = constant;
    std::vector<Tensor> out = run_kernel(call);
    ASSERT_EQ(out[0].shape(), tc.out);
    // Reference: promote 1-D operands, broadcast batches by index arithmetic.
    Shape a = tc.a, b = tc.b;
    if (a.size() == 1) a.insert(a.begin(), 1);
    if (b.size() == 1) b.push_back(1);
    const int64_t m = a[a.size() - 2], k = a.back(), n = b.back();
    Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
    const std::size_t rank = std::max(ab.size(), bb.size());
    while (ab.size() < rank) ab.insert(ab.begin(), 1);
    while (bb.size() < rank) bb.insert(bb.begin(), 1);
    Shape batch(rank);
    for (std::size_t i = 0; i < rank; ++i) batch[i] = std::max(ab[i], bb[i]);
    std::vector<double> ref;
    for (int64_t flat = 0; flat < core::shape_numel(batch); ++flat) {
      int64_t rem = flat, ai = 0, bi = 0, am = 1, bm = 1;
      for (std::size_t d = rank; d-- > 0;) {
        const int64_t idx = rem % batch[d];
        rem /= batch[d];
        ai += (ab[d] == 1 ? 0 : idx) * am;
        bi += (bb[d] == 1 ? 0 : idx) * bm;
        am *= ab[d];
        bm *= bb[d];
      }
      std::vector<double> part = matmul_ref(call.inputs[0].data<float>() + ai * m * k,
                                            call.inputs[1].data<float>() + bi * k * n, m, n, k);
      ref.insert(ref.end(), part.begin(), part.end());
    }
    EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatMulShapes,
    ::testing::Values(MatMulCase{{3, 4}, {4, 5}, {3, 5}}, MatMulCase{{4}, {4, 5}, {5}}, MatMulCase{{3, 4}, {4}, {3}},
                      MatMulCase{{4}, {4}, {}}, MatMulCase{{2, 3, 7, 20}, {20, 9}, {2, 3, 7, 9}},
                      MatMulCase{{2, 1, 7, 20}, {3, 20, 9}, {2, 3, 7, 9}},
                      MatMulCase{{2, 6, 33, 64}, {2, 6, 64, 33}, {2, 6, 33, 64 / 64 * 33}},
                      MatMulCase{{5, 20}, {2, 20, 9}, {2, 5, 9}}, MatMulCase{{2, 4, 257, 24}, {24, 70}, {2, 4, 257, 70}},
                      MatMulCase{{3, 20}, {2, 1, 20, 9}, {2, 1, 3, 9}}));

TEST(MatMul, Float64AndInt64UseTheReference) {
  KernelCall call = call_for(make_node("MatMul", 2));
  call.inputs = {Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4}), Tensor::from_vector<int64_t>({2, 1}, {5, 6})};
  std::vector<Tensor> out = run_kernel(call);
  EXPECT_EQ(out[0].data<int64_t>()[0], 17);
  EXPECT_EQ(out[0].data<int64_t>()[1], 39);
  KernelCall dcall = call_for(make_node("MatMul", 2));
  dcall.inputs = {testing::random_tensor_f64({3, 5}, 1), testing::random_tensor_f64({5, 2}, 2)};
  out = run_kernel(dcall);
  const double* a = dcall.inputs[0].data<double>();
  const double* b = dcall.inputs[1].data<double>();
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) {
      double s = 0;
      for (int p = 0; p < 5; ++p) s += a[i * 5 + p] * b[p * 2 + j];
      EXPECT_NEAR(out[0].data<double>()[i * 2 + j], s, 1e-12);
    }
  }
}

TEST(MatMul, RejectsMismatchedInnerDimensions) {
  KernelCall call = call_for(make_node("MatMul", 2));
  call.inputs = {random_tensor({3, 4}, 1), random_tensor({5, 2}, 2)};
  EXPECT_THROW(run_kernel(call), Error);
  call.inputs = {random_tensor({2, 3, 4}, 1), random_tensor({3, 4, 2}, 2)};
  EXPECT_THROW(run_kernel(call), Error);
}

// ---- Gemm -------------------------------------------------------------------------------------

TEST(Gemm, TransposesScalesAndBroadcastsC) {
  const int64_t m = 9, n = 21, k = 13;
  for (int trans = 0; trans < 4; ++trans) {
    for (const Shape& c_shape : {Shape{}, Shape{n}, Shape{m, 1}, Shape{m, n}, Shape{1}}) {
      for (bool constant : {false, true}) {
        const bool ta = trans & 1, tb = trans & 2;
        onnx::Node node = make_node("Gemm", 3);
        set_int(node, "transA", ta);
        set_int(node, "transB", tb);
        set_float(node, "alpha", 0.75F);
        set_float(node, "beta", -1.5F);
        KernelCall call = call_for(node);
        call.inputs = {random_tensor(ta ? Shape{k, m} : Shape{m, k}, 5), random_tensor(tb ? Shape{n, k} : Shape{k, n}, 6),
                       random_tensor(c_shape, 7)};
        call.inputs_constant = constant;
        std::vector<Tensor> out = run_kernel(call);
        ASSERT_EQ(out[0].shape(), (Shape{m, n}));
        const float* a = call.inputs[0].data<float>();
        const float* b = call.inputs[1].data<float>();
        const float* c = call.inputs[2].data<float>();
        std::vector<double> ref(static_cast<std::size_t>(m * n));
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) s += double(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            double cv;
            if (c_shape.size() == 2) {
              cv = c[(c_shape[0] == 1 ? 0 : i) * c_shape[1] + (c_shape[1] == 1 ? 0 : j)];
            } else if (c_shape.size() == 1 && c_shape[0] == n) {
              cv = c[j];
            } else {
              cv = c[0];
            }
            ref[static_cast<std::size_t>(i * n + j)] = 0.75 * s - 1.5 * cv;
          }
        }
        EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-4) << "trans " << trans << " C " << core::shape_to_string(c_shape);
      }
    }
  }
}

TEST(Gemm, WithoutCAndRejectsBadC) {
  KernelCall call = call_for(make_node("Gemm", 2));
  call.inputs = {random_tensor({4, 3}, 1), random_tensor({3, 2}, 2)};
  std::vector<Tensor> out = run_kernel(call);
  EXPECT_LT(testing::max_abs_diff(out[0], matmul_ref(call.inputs[0].data<float>(), call.inputs[1].data<float>(), 4, 2, 3)),
            1e-5);
  KernelCall bad = call_for(make_node("Gemm", 3));
  bad.inputs = {random_tensor({4, 3}, 1), random_tensor({3, 2}, 2), random_tensor({3, 2}, 3)};
  EXPECT_THROW(run_kernel(bad), Error);
}

// ---- Conv -------------------------------------------------------------------------------------

struct ConvCase {
  Shape x, w;
  testing::ConvParams p;
  bool bias;
};

class ConvShapes : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvShapes, MatchesDirectConvolution) {
  const ConvCase& tc = GetParam();
  onnx::Node node = make_node("Conv", tc.bias ? 3 : 2);
  set_ints(node, "strides", tc.p.strides);
  set_ints(node, "dilations", tc.p.dilations);
  set_ints(node, "pads", tc.p.pads);
  set_int(node, "group", tc.p.group);
  KernelCall call = call_for(node);
  call.inputs = {random_tensor(tc.x, 11), random_tensor(tc.w, 12)};
  if (tc.bias) call.inputs.push_back(random_tensor({tc.w[0]}, 13));
  call.inputs_constant = true;
  std::vector<Tensor> out = run_kernel(call);
  Shape ref_shape;
  std::vector<double> ref =
      testing::conv2d_reference(call.inputs[0], call.inputs[1], tc.bias ? call.inputs[2] : Tensor(), tc.p, ref_shape);
  ASSERT_EQ(out[0].shape(), ref_shape);
  EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvShapes,
    ::testing::Values(ConvCase{{1, 3, 8, 8}, {4, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1, 1, 1}, 1}, true},
                      ConvCase{{2, 3, 32, 32}, {5, 3, 16, 16}, {{16, 16}, {1, 1}, {0, 0, 0, 0}, 1}, true},
                      ConvCase{{1, 24, 9, 7}, {20, 24, 1, 1}, {{1, 1}, {1, 1}, {0, 0, 0, 0}, 1}, false},
                      ConvCase{{1, 6, 11, 10}, {6, 1, 3, 3}, {{2, 1}, {1, 1}, {1, 0, 2, 1}, 6}, true},
                      ConvCase{{2, 4, 10, 12}, {6, 2, 3, 2}, {{1, 2}, {2, 1}, {2, 1, 0, 3}, 2}, true},
                      ConvCase{{1, 16, 12, 12}, {16, 16, 3, 3}, {{1, 1}, {3, 3}, {3, 3, 3, 3}, 1}, false}));

// Grouped convolutions pack each group's unfolded input on the pool's threads: every thread must write
// into the calling thread's packed operands (naming a thread_local inside the parallel loop gave each worker
// its own empty vector and crashed some runs). Many groups, four threads, repeated.
TEST(Conv, GroupedConvolutionOnEveryPoolThread) {
  onnx::Node node = make_node("Conv", 3);
  set_int(node, "group", 32);
  set_ints(node, "pads", {1, 1, 1, 1});
  KernelCall call = call_for(node);
  call.inputs = {random_tensor({1, 32, 20, 20}, 21), random_tensor({32, 1, 3, 3}, 22), random_tensor({32}, 23)};
  call.inputs_constant = true;
  call.threads = 4;
  Shape ref_shape;
  const std::vector<double> ref = testing::conv2d_reference(call.inputs[0], call.inputs[1], call.inputs[2],
                                                            {{1, 1}, {1, 1}, {1, 1, 1, 1}, 32}, ref_shape);
  for (int run = 0; run < 20; ++run) {
    std::vector<Tensor> out = run_kernel(call);
    ASSERT_EQ(out[0].shape(), ref_shape);
    ASSERT_LT(testing::max_abs_diff(out[0], ref), 1e-4) << "run " << run;
  }
}

TEST(Conv, OneDimensionalAndAutoPad) {
  // 1-D conv compared with the 2-D reference on a height of 1.
  onnx::Node node = make_node("Conv", 2);
  set_ints(node, "strides", {2});
  set_ints(node, "pads", {1, 2});
  KernelCall call = call_for(node);
  call.inputs = {random_tensor({2, 3, 17}, 21), random_tensor({4, 3, 5}, 22)};
  std::vector<Tensor> out = run_kernel(call);
  testing::ConvParams p{{1, 2}, {1, 1}, {0, 1, 0, 2}, 1};
  Shape ref_shape;
  std::vector<double> ref = testing::conv2d_reference(call.inputs[0].reshaped({2, 3, 1, 17}),
                                                      call.inputs[1].reshaped({4, 3, 1, 5}), Tensor(), p, ref_shape);
  ASSERT_EQ(out[0].shape(), (Shape{2, 4, ref_shape[3]}));
  EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-4);

  // SAME_UPPER with stride 2 on 7x7: output 4x4, total pad 2 per axis split 1/1 for a 3x3 kernel.
  onnx::Node same = make_node("Conv", 2);
  set_string(same, "auto_pad", "SAME_UPPER");
  set_ints(same, "strides", {2, 2});
  KernelCall scall = call_for(same);
  scall.inputs = {random_tensor({1, 2, 7, 7}, 23), random_tensor({3, 2, 3, 3}, 24)};
  out = run_kernel(scall);
  ref = testing::conv2d_reference(scall.inputs[0], scall.inputs[1], Tensor(), {{2, 2}, {1, 1}, {1, 1, 1, 1}, 1}, ref_shape);
  ASSERT_EQ(out[0].shape(), ref_shape);
  EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-4);
}

TEST(Conv, RejectsBadGroups) {
  onnx::Node node = make_node("Conv", 2);
  set_int(node, "group", 2);
  KernelCall call = call_for(node);
  call.inputs = {random_tensor({1, 3, 5, 5}, 1), random_tensor({4, 3, 3, 3}, 2)};
  EXPECT_THROW(run_kernel(call), Error);
}

// ---- LayerNormalization -----------------------------------------------------------------------

TEST(LayerNormalization, NormalizesTrailingAxesWithStatistics) {
  for (int64_t axis : {-1, 1}) {
    onnx::Node node = make_node("LayerNormalization", 3, 3);
    set_int(node, "axis", axis);
    set_float(node, "epsilon", 1e-3F);
    const Shape shape{3, 4, 37};
    const Shape norm = axis == -1 ? Shape{37} : Shape{4, 37};
    KernelCall call = call_for(node);
    call.inputs = {random_tensor(shape, 31, -3.0F, 5.0F), random_tensor(norm, 32), random_tensor(norm, 33)};
    std::vector<Tensor> out = run_kernel(call);
    const int64_t size = core::shape_numel(norm), rows = core::shape_numel(shape) / size;
    ASSERT_EQ(out.size(), 3U);
    EXPECT_EQ(out[1].shape(), axis == -1 ? (Shape{3, 4, 1}) : (Shape{3, 1, 1}));
    std::vector<double> ref(static_cast<std::size_t>(rows * size));
    const float* x = call.inputs[0].data<float>();
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < size; ++i) mean += x[r * size + i];
      mean /= size;
      for (int64_t i = 0; i < size; ++i) var += (x[r * size + i] - mean) * (x[r * size + i] - mean);
      var /= size;
      const double inv = 1.0 / std::sqrt(var + 1e-3);
      for (int64_t i = 0; i < size; ++i) {
        ref[static_cast<std::size_t>(r * size + i)] =
            (x[r * size + i] - mean) * inv * call.inputs[1].data<float>()[i] + call.inputs[2].data<float>()[i];
      }
      EXPECT_NEAR(out[1].data<float>()[r], mean, 1e-5);
      EXPECT_NEAR(out[2].data<float>()[r], inv, 1e-4);
    }
    EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-4);
  }
}

// ---- Softmax ----------------------------------------------------------------------------------

TEST(Softmax, AxisSemanticsBeforeAndFrom13) {
  const Shape shape{2, 3, 19};
  Tensor x = random_tensor(shape, 41, -10.0F, 10.0F);
  x.data<float>()[5] = -std::numeric_limits<float>::infinity();
  for (int opset : {11, 13}) {
    for (int64_t axis : {-1, 1, 0}) {
      onnx::Node node = make_node("Softmax", 1);
      set_int(node, "axis", axis);
      KernelCall call = call_for(node);
      call.opset = opset;
      call.inputs = {x};
      std::vector<Tensor> out = run_kernel(call);
      const int a = axis < 0 ? 2 : static_cast<int>(axis);
      int64_t outer = 1, len = 1, inner = 1;
      for (int d = 0; d < 3; ++d) {
        if (d < a) outer *= shape[d];
        else if (d == a || opset < 13) len *= shape[d];
        else inner *= shape[d];
      }
      std::vector<double> ref(static_cast<std::size_t>(x.numel()));
      const float* xd = x.data<float>();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          double mx = -INFINITY, sum = 0;
          for (int64_t l = 0; l < len; ++l) mx = std::max(mx, double(xd[(o * len + l) * inner + i]));
          for (int64_t l = 0; l < len; ++l) sum += std::exp(xd[(o * len + l) * inner + i] - mx);
          for (int64_t l = 0; l < len; ++l) {
            ref[static_cast<std::size_t>((o * len + l) * inner + i)] = std::exp(xd[(o * len + l) * inner + i] - mx) / sum;
          }
        }
      }
      EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-6) << "opset " << opset << " axis " << axis;
      EXPECT_EQ(out[0].data<float>()[5], 0.0F);
    }
  }
}

// Rows of whole vectors and rows ending in 1 to 7 values (masked lanes), one of them -inf (a masked logit).
TEST(Softmax, LongRowsUseTheVectorPath) {
  for (const int64_t width : {1028, 257, 263, 15, 7, 2}) {
    Tensor x = random_tensor({3, width}, 42, -30.0F, 30.0F);
    x.data<float>()[width - 1] = -std::numeric_limits<float>::infinity();
    x.data<float>()[width] = -std::numeric_limits<float>::infinity();  // row 1's first value
    KernelCall call = call_for(make_node("Softmax", 1));
    call.inputs = {x};
    std::vector<Tensor> out = run_kernel(call);
    std::vector<double> ref(static_cast<std::size_t>(x.numel()));
    for (int64_t r = 0; r < 3; ++r) {
      double mx = -INFINITY, sum = 0;
      const float* row = x.data<float>() + r * width;
      for (int64_t i = 0; i < width; ++i) mx = std::max(mx, double(row[i]));
      for (int64_t i = 0; i < width; ++i) sum += std::exp(row[i] - mx);
      for (int64_t i = 0; i < width; ++i) ref[static_cast<std::size_t>(r * width + i)] = std::exp(row[i] - mx) / sum;
    }
    EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-6) << width;
  }
}

// ---- GridSample -------------------------------------------------------------------------------

// Bilinear, zeros padding, straight from the formula: unnormalize, 4 neighbours, out-of-range = 0.
double grid_sample_bilinear_ref(const float* plane, int64_t h, int64_t w, double gx, double gy, bool align) {
  const double px = align ? (gx + 1) / 2 * (w - 1) : ((gx + 1) * w - 1) / 2;
  const double py = align ? (gy + 1) / 2 * (h - 1) : ((gy + 1) * h - 1) / 2;
  const double x0 = std::floor(px), y0 = std::floor(py);
  auto at = [&](double r, double c) {
    return (r < 0 || r >= h || c < 0 || c >= w) ? 0.0 : double(plane[int64_t(r) * w + int64_t(c)]);
  };
  const double dx = px - x0, dy = py - y0;
  return (1 - dy) * ((1 - dx) * at(y0, x0) + dx * at(y0, x0 + 1)) + dy * ((1 - dx) * at(y0 + 1, x0) + dx * at(y0 + 1, x0 + 1));
}

TEST(GridSample, BilinearZerosMatchesFormula) {
  for (int align = 0; align < 2; ++align) {
    onnx::Node node = make_node("GridSample", 2);
    set_int(node, "align_corners", align);
    KernelCall call = call_for(node);
    call.opset = 16;
    call.inputs = {random_tensor({2, 3, 5, 7}, 51), random_tensor({2, 4, 6, 2}, 52, -1.3F, 1.3F)};
    std::vector<Tensor> out = run_kernel(call);
    ASSERT_EQ(out[0].shape(), (Shape{2, 3, 4, 6}));
    std::vector<double> ref;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t p = 0; p < 24; ++p) {
          const float* g = call.inputs[1].data<float>() + (n * 24 + p) * 2;
          ref.push_back(grid_sample_bilinear_ref(call.inputs[0].data<float>() + (n * 3 + c) * 35, 5, 7, g[0], g[1], align));
        }
    EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-5) << "align_corners " << align;
  }
}

TEST(GridSample, IdentityGridReproducesInputInEveryMode) {
  const int64_t h = 4, w = 5;
  Tensor grid = Tensor::empty(DType::kFloat32, {1, h, w, 2});
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      grid.data<float>()[(i * w + j) * 2] = -1.0F + 2.0F * j / (w - 1);
      grid.data<float>()[(i * w + j) * 2 + 1] = -1.0F + 2.0F * i / (h - 1);
    }
  Tensor x = random_tensor({1, 2, h, w}, 53);
  std::vector<double> ref(x.span<float>().begin(), x.span<float>().end());
  for (const char* mode : {"nearest", "bilinear", "bicubic"}) {
    for (const char* pad : {"zeros", "border", "reflection"}) {
      onnx::Node node = make_node("GridSample", 2);
      set_int(node, "align_corners", 1);
      set_string(node, "mode", mode);
      set_string(node, "padding_mode", pad);
      KernelCall call = call_for(node);
      call.inputs = {x, grid};
      std::vector<Tensor> out = run_kernel(call);
      EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-5) << mode << " " << pad;
    }
  }
}

// ONNX's GridSample definition (onnx/reference/ops/op_grid_sample.py) for bilinear sampling with any
// padding mode, in double: a coordinate outside the border is first clamped or reflected, then each of the
// four neighbours is read through the same padding rule.
double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (x < lo) {
    const double dx = lo - x;
    const auto n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const auto n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

double grid_sample_padded_ref(const float* plane, int64_t h, int64_t w, double gx, double gy, bool align,
                              const std::string& pad) {
  const double lo_x = align ? 0.0 : -0.5, hi_x = align ? double(w - 1) : double(w) - 0.5;
  const double lo_y = align ? 0.0 : -0.5, hi_y = align ? double(h - 1) : double(h) - 0.5;
  double px = align ? (gx + 1) / 2 * (w - 1) : ((gx + 1) * w - 1) / 2;
  double py = align ? (gy + 1) / 2 * (h - 1) : ((gy + 1) * h - 1) / 2;
  if (px < lo_x || px > hi_x) px = pad == "border" ? std::clamp(px, 0.0, double(w - 1)) : pad == "reflection" ? reflect(px, lo_x, hi_x) : px;
  if (py < lo_y || py > hi_y) py = pad == "border" ? std::clamp(py, 0.0, double(h - 1)) : pad == "reflection" ? reflect(py, lo_y, hi_y) : py;
  auto at = [&](int64_t r, int64_t c) {
    if (pad == "zeros") return (r < 0 || r >= h || c < 0 || c >= w) ? 0.0 : double(plane[r * w + c]);
    if (pad == "border") {
      r = std::clamp<int64_t>(r, 0, h - 1);
      c = std::clamp<int64_t>(c, 0, w - 1);
    } else {
      r = static_cast<int64_t>(reflect(double(r), lo_y, hi_y));
      c = static_cast<int64_t>(reflect(double(c), lo_x, hi_x));
    }
    return double(plane[r * w + c]);
  };
  const auto x0 = static_cast<int64_t>(std::floor(px)), y0 = static_cast<int64_t>(std::floor(py));
  const double dx = px - double(x0), dy = py - double(y0);
  return (1 - dy) * ((1 - dx) * at(y0, x0) + dx * at(y0, x0 + 1)) + dy * ((1 - dx) * at(y0 + 1, x0) + dx * at(y0 + 1, x0 + 1));
}

// A float64 grid (features float32) against the definition, in every padding mode, both alignments; the grid
// reaches past the borders so that clamping and reflection are exercised.
TEST(GridSample, Float64GridWithFloat32Features) {
  Tensor x = random_tensor({1, 3, 6, 6}, 54);
  Tensor grid32 = random_tensor({1, 5, 5, 2}, 55, -1.6F, 1.6F);
  Tensor grid64 = Tensor::empty(DType::kFloat64, {1, 5, 5, 2});
  for (int64_t i = 0; i < grid32.numel(); ++i) grid64.data<double>()[i] = grid32.data<float>()[i] * (1.0 + 1e-9);
  for (int align = 0; align < 2; ++align) {
    for (const std::string pad : {"zeros", "border", "reflection"}) {
      onnx::Node node = make_node("GridSample", 2);
      set_string(node, "padding_mode", pad);
      set_int(node, "align_corners", align);
      KernelCall call = call_for(node);
      call.inputs = {x, grid64};
      std::vector<Tensor> out = run_kernel(call);
      ASSERT_EQ(out[0].dtype(), DType::kFloat32);
      ASSERT_EQ(out[0].shape(), (Shape{1, 3, 5, 5}));
      std::vector<double> ref;
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t p = 0; p < 25; ++p) {
          const double* g = grid64.data<double>() + p * 2;
          ref.push_back(grid_sample_padded_ref(x.data<float>() + c * 36, 6, 6, g[0], g[1], align, pad));
        }
      EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-5) << pad << " align_corners " << align;
    }
  }
  KernelCall bad = call_for(make_node("GridSample", 2));
  bad.inputs = {x, random_tensor({2, 5, 5, 2}, 56)};
  EXPECT_THROW(run_kernel(bad), Error);
}

// ---- Resize -----------------------------------------------------------------------------------

TEST(Resize, LinearHalfPixelMatchesBilinearFormula) {
  onnx::Node node = make_node("Resize", 3);
  set_string(node, "mode", "linear");
  KernelCall call = call_for(node);
  call.inputs = {random_tensor({1, 2, 4, 5}, 61), Tensor(), Tensor::from_vector<float>({4}, {1.0F, 1.0F, 1.5F, 0.6F})};
  call.inputs_constant = true;
  std::vector<Tensor> out = run_kernel(call);
  ASSERT_EQ(out[0].shape(), (Shape{1, 2, 6, 3}));
  std::vector<double> ref;
  const float* x = call.inputs[0].data<float>();
  auto src = [](int64_t i, double scale, int64_t in, int64_t& lo, double& frac) {
    double v = std::clamp((i + 0.5) / scale - 0.5, 0.0, double(in - 1));
    lo = std::min<int64_t>(int64_t(std::floor(v)), in - 1);
    frac = v - lo;
  };
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        int64_t y0, x0;
        double fy, fx;
        src(i, 1.5, 4, y0, fy);
        src(j, 0.6, 5, x0, fx);
        const int64_t y1 = std::min<int64_t>(y0 + 1, 3), x1 = std::min<int64_t>(x0 + 1, 4);
        const float* p = x + c * 20;
        ref.push_back((1 - fy) * ((1 - fx) * p[y0 * 5 + x0] + fx * p[y0 * 5 + x1]) +
                      fy * ((1 - fx) * p[y1 * 5 + x0] + fx * p[y1 * 5 + x1]));
      }
  EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-5);
}

TEST(Resize, NearestWithSizesRepeatsAndSubsamples) {
  onnx::Node node = make_node("Resize", 4);
  set_string(node, "coordinate_transformation_mode", "asymmetric");
  set_string(node, "nearest_mode", "floor");
  KernelCall call = call_for(node);
  call.inputs = {random_tensor({1, 1, 8, 6}, 62), Tensor(), Tensor(), Tensor::from_vector<int64_t>({4}, {1, 1, 4, 12})};
  call.inputs_constant = true;
  std::vector<Tensor> out = run_kernel(call);
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 4, 12}));
  std::vector<double> ref;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 12; ++j) ref.push_back(call.inputs[0].data<float>()[(i * 2) * 6 + j / 2]);
  EXPECT_LT(testing::max_abs_diff(out[0], ref), 0.0 + 1e-12);
}

TEST(Resize, RefusesDynamicScalesAndAntialias) {
  onnx::Node node = make_node("Resize", 3);
  KernelCall call = call_for(node);
  call.inputs = {random_tensor({1, 1, 4, 4}, 63), Tensor(), Tensor::from_vector<float>({4}, {1, 1, 2, 2})};
  EXPECT_THROW(run_kernel(call), Error);  // scales not constant
  onnx::Node aa = make_node("Resize", 3);
  set_int(aa, "antialias", 1);
  EXPECT_THROW(
      {
        KernelCall c = call_for(aa);
        c.inputs = call.inputs;
        c.inputs_constant = true;
        run_kernel(c);
      },
      Error);
}

// ---- BatchNormalization, InstanceNormalization --------------------------------------------------

TEST(Normalization, BatchAndInstanceMatchFormulas) {
  Tensor x = random_tensor({2, 3, 4, 5}, 71, -2.0F, 3.0F);
  Tensor scale = random_tensor({3}, 72), bias = random_tensor({3}, 73), mean = random_tensor({3}, 74);
  Tensor var = random_tensor({3}, 75, 0.1F, 2.0F);
  onnx::Node bn = make_node("BatchNormalization", 5);
  set_float(bn, "epsilon", 1e-3F);
  KernelCall call = call_for(bn);
  call.inputs = {x, scale, bias, mean, var};
  std::vector<Tensor> out = run_kernel(call);
  std::vector<double> ref;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / 20) % 3;
    ref.push_back((x.data<float>()[i] - mean.data<float>()[c]) / std::sqrt(var.data<float>()[c] + 1e-3) *
                      scale.data<float>()[c] + bias.data<float>()[c]);
  }
  EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-5);

  KernelCall icall = call_for(make_node("InstanceNormalization", 3));
  icall.inputs = {x, scale, bias};
  out = run_kernel(icall);
  ref.clear();
  for (int64_t nc = 0; nc < 6; ++nc) {
    const float* p = x.data<float>() + nc * 20;
    double m = 0, v = 0;
    for (int i = 0; i < 20; ++i) m += p[i];
    m /= 20;
    for (int i = 0; i < 20; ++i) v += (p[i] - m) * (p[i] - m);
    v /= 20;
    for (int i = 0; i < 20; ++i) {
      ref.push_back((p[i] - m) / std::sqrt(v + 1e-5) * scale.data<float>()[nc % 3] + bias.data<float>()[nc % 3]);
    }
  }
  EXPECT_LT(testing::max_abs_diff(out[0], ref), 1e-5);

  onnx::Node training = make_node("BatchNormalization", 5);
  set_int(training, "training_mode", 1);
  KernelCall tcall = call_for(training);
  tcall.inputs = call.inputs;
  EXPECT_THROW(run_kernel(tcall), Error);
}

// ---- MaxPool ----------------------------------------------------------------------------------

TEST(MaxPool, WindowsPadsCeilModeAndIndices) {
  struct Case {
    std::vector<int64_t> kernel, strides, dilations, pads;
    int ceil;
  };
  for (const Case& tc : {Case{{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0}, Case{{3, 2}, {2, 3}, {1, 1}, {0, 0, 0, 0}, 1},
                         Case{{2, 2}, {1, 1}, {2, 2}, {1, 0, 0, 1}, 0}}) {
    onnx::Node node = make_node("MaxPool", 1, 2);
    set_ints(node, "kernel_shape", tc.kernel);
    set_ints(node, "strides", tc.strides);
    set_ints(node, "dilations", tc.dilations);
    set_ints(node, "pads", tc.pads);
    set_int(node, "ceil_mode", tc.ceil);
    KernelCall call = call_for(node);
    const int64_t h = 9, w = 8;
    call.inputs = {random_tensor({2, 3, h, w}, 81)};
    std::vector<Tensor> out = run_kernel(call);
    ASSERT_EQ(out.size(), 2U);
    const int64_t oh = out[0].dim(2), ow = out[0].dim(3);
    auto out_size = [&](int64_t in, int a) {
      const double span = double(in + tc.pads[a] + tc.pads[a + 2] - ((tc.kernel[a] - 1) * tc.dilations[a] + 1)) / tc.strides[a];
      int64_t o = (tc.ceil ? int64_t(std::ceil(span)) : int64_t(std::floor(span))) + 1;
      if (tc.ceil && (o - 1) * tc.strides[a] >= in + tc.pads[a]) --o;
      return o;
    };
    ASSERT_EQ(oh, out_size(h, 0));
    ASSERT_EQ(ow, out_size(w, 1));
    std::vector<double> ref;
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double best = -INFINITY;
          for (int64_t a = 0; a < tc.kernel[0]; ++a)
            for (int64_t b = 0; b < tc.kernel[1]; ++b) {
              const int64_t y = i * tc.strides[0] - tc.pads[0] + a * tc.dilations[0];
              const int64_t x = j * tc.strides[1] - tc.pads[1] + b * tc.dilations[1];
              if (y >= 0 && y < h && x >= 0 && x < w) best = std::max(best, double(call.inputs[0].data<float>()[(p * h + y) * w + x]));
            }
          ref.push_back(best);
        }
    EXPECT_EQ(testing::max_abs_diff(out[0], ref), 0.0);
    for (int64_t i = 0; i < out[0].numel(); ++i) {
      EXPECT_EQ(call.inputs[0].data<float>()[out[1].data<int64_t>()[i]], out[0].data<float>()[i]);
    }
  }
}

// ---- Bad input: a clear error naming the node, never a crash -------------------------------------

TEST(ComputeKernels, RejectBadInputsWithErrors) {
  auto expect_invalid = [](KernelCall call, const std::string& fragment) {
    try {
      run_kernel(call);
      ADD_FAILURE() << "no error for " << call.node.op_type;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what() << " / " << e.problem();
      EXPECT_NE(e.where().find(call.node.op_type), std::string::npos) << e.where();
    }
  };
  onnx::Node softmax = make_node("Softmax", 1);
  set_int(softmax, "axis", 3);
  KernelCall c1 = call_for(softmax);
  c1.inputs = {random_tensor({2, 3}, 1)};
  expect_invalid(c1, "axis 3");

  KernelCall c2 = call_for(make_node("LayerNormalization", 2));
  c2.inputs = {random_tensor({2, 8}, 1), random_tensor({7}, 2)};
  expect_invalid(c2, "Scale");

  onnx::Node pool = make_node("MaxPool", 1);
  set_ints(pool, "kernel_shape", {5, 5});
  KernelCall c3 = call_for(pool);
  c3.inputs = {random_tensor({1, 1, 3, 3}, 1)};
  expect_invalid(c3, "window");

  KernelCall c4 = call_for(make_node("Conv", 2));
  c4.inputs = {random_tensor({1, 2, 3, 3}, 1), random_tensor({1, 2, 4, 4}, 2)};
  expect_invalid(c4, "window");

  KernelCall c5 = call_for(make_node("MatMul", 2));
  c5.inputs = {random_tensor({3, 4}, 1), Tensor::from_vector<double>({4, 2}, std::vector<double>(8, 1.0))};
  expect_invalid(c5, "B is float64");
}

}  // namespace
}  // namespace detrq
