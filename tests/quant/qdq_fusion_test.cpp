// The int8 GEMM on every ISA (each by a target narrowed to it; skipped, saying why, where this CPU lacks
// it) against a direct int64 computation, and the Session's Q/DQ
// fusion (QuantizeLinear -> DequantizeLinear -> MatMul <- DequantizeLinear(int8 W)) against the same
// graph run in float, with the built-in kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "detrq/core/error.h"
#include "detrq/core/thread_pool.h"
#include "detrq/runtime/session.h"
#include "runtime/isa_paths.h"
#include "runtime/kernels/int8_gemm/int8_gemm.h"

namespace detrq {
namespace {

using core::DType;
using core::Tensor;
using runtime::CpuFeature;
using runtime::CpuTarget;
using runtime::kernels::available_int8_isas;
using runtime::kernels::best_int8_isa;
using runtime::kernels::int8_gemm;
using runtime::kernels::int8_isa_name;
using runtime::kernels::Int8Isa;
using runtime::kernels::PackedInt8Weights;

struct GemmCase {
  int64_t m, k, n;
};

// y = a_scale * w_scale[n] * sum_k (a - zp) * w, the sum in int64 (no overflow or saturation possible).
std::vector<float> direct(const std::vector<uint8_t>& a, bool a_signed, int32_t zp, float a_scale,
                          const std::vector<int8_t>& w, const std::vector<float>& w_scale, const GemmCase& c) {
  std::vector<float> y(static_cast<std::size_t>(c.m * c.n));
  for (int64_t r = 0; r < c.m; ++r) {
    for (int64_t j = 0; j < c.n; ++j) {
      int64_t acc = 0;
      for (int64_t kk = 0; kk < c.k; ++kk) {
        const uint8_t raw = a[static_cast<std::size_t>(r * c.k + kk)];
        const int64_t av = a_signed ? static_cast<int8_t>(raw) : raw;
        acc += (av - zp) * w[static_cast<std::size_t>(kk * c.n + j)];
      }
      const float s = a_scale * w_scale[w_scale.size() > 1 ? static_cast<std::size_t>(j) : 0];
      y[static_cast<std::size_t>(r * c.n + j)] = static_cast<float>(acc) * s;
    }
  }
  return y;
}

// The int8 GEMM's ISAs, each with a target narrowed to exactly the features it needs.
testing::IsaPath int8_path(Int8Isa isa) { return {int8_isa_name(isa), runtime::kernels::int8_isa_features(isa)}; }

class Int8Gemm : public ::testing::TestWithParam<Int8Isa> {};

TEST_P(Int8Gemm, MatchesADirectSumOnOddShapes) {
  const testing::IsaPath path = int8_path(GetParam());
  DETRQ_SKIP_UNLESS_HOST_RUNS(path);
  const Int8Isa isa = GetParam();
  // The narrowed target picks exactly this ISA; AVX2's int16 path shares AVX2-S8's features and is the
  // exact form for weights holding a -128, which packing for AVX2-S8 picks itself (tested below).
  ASSERT_EQ(best_int8_isa(path.target), isa == Int8Isa::kAvx2 ? Int8Isa::kAvx2S8 : isa);
  std::mt19937 rng(7);
  core::ThreadPool pool(3);
  const std::vector<GemmCase> cases = {{1, 1, 1},   {3, 5, 7},    {9, 17, 16},  {8, 4, 32},   {17, 33, 33},
                                       {5, 130, 40}, {33, 64, 100}, {2, 513, 15}, {64, 384, 96}, {13, 7, 1}};
  {
    for (const GemmCase& c : cases) {
      for (int variant = 0; variant < 6; ++variant) {
        const bool a_signed = variant % 2 == 0;
        const bool per_channel = variant / 2 == 0;
        std::uniform_int_distribution<int> byte(0, 255);
        std::vector<uint8_t> a(static_cast<std::size_t>(c.m * c.k));
        std::vector<int8_t> w(static_cast<std::size_t>(c.k * c.n));
        for (auto& v : a) v = static_cast<uint8_t>(byte(rng));
        for (auto& v : w) v = static_cast<int8_t>(byte(rng) - 128);
        if (variant == 3) {  // the extremes, where a saturating multiply-add would go wrong
          for (auto& v : a) v = 255;
          for (auto& v : w) v = -128;
        }
        // The largest products AVX2-S8 takes: |a| = 128 (s8 -128, or u8 0, which it shifts to -128) times
        // |w| = 127, two of them per int16 pair: 32512, next to saturation.
        if (variant == 4) {
          for (auto& v : a) v = 0x80;  // s8 -128
          for (auto& v : w) v = -127;
        }
        if (variant == 5) {
          for (auto& v : a) v = 0;
          for (auto& v : w) v = 127;
        }
        const int32_t zp = a_signed ? -3 : 131;
        std::vector<float> w_scale(per_channel ? static_cast<std::size_t>(c.n) : 1);
        for (std::size_t j = 0; j < w_scale.size(); ++j) w_scale[j] = 0.001F * static_cast<float>(1 + j % 7);
        const float a_scale = 0.02F;
        PackedInt8Weights packed(w.data(), c.k, c.n, isa, path.target);
        const bool has_minus_128 = std::find(w.begin(), w.end(), int8_t{-128}) != w.end();
        ASSERT_EQ(packed.isa(), isa == Int8Isa::kAvx2S8 && has_minus_128 ? Int8Isa::kAvx2 : isa);
        std::vector<std::byte> scratch_store(packed.scratch_bytes(c.m) + 64);
        void* scratch = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch_store.data()) + 63) / 64 * 64);
        // One guard column past each row would catch a store beyond N.
        std::vector<float> y(static_cast<std::size_t>(c.m * c.n) + 16, -7.0F);
        int8_gemm(packed, a.data(), a_signed, c.m, zp, a_scale, w_scale.data(), per_channel, y.data(), scratch, pool);
        const std::vector<float> want = direct(a, a_signed, zp, a_scale, w, w_scale, c);
        for (std::size_t i = 0; i < want.size(); ++i) {
          ASSERT_NEAR(y[i], want[i], 1e-6F * std::abs(want[i]) + 1e-12F)
              << int8_isa_name(isa) << " m=" << c.m << " k=" << c.k << " n=" << c.n << " variant " << variant
              << " at " << i;
        }
        for (std::size_t i = want.size(); i < y.size(); ++i) ASSERT_EQ(y[i], -7.0F) << int8_isa_name(isa) << " wrote past y";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Int8Gemm,
                         ::testing::Values(Int8Isa::kReference, Int8Isa::kAvx2, Int8Isa::kAvx2S8, Int8Isa::kAvxVnni,
                                           Int8Isa::kAvx512Vnni),
                         [](const auto& info) {
                           std::string name = int8_isa_name(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');  // gtest names: [A-Za-z0-9_]
                           return name;
                         });

// AVX2-S8 cannot multiply a -128 weight exactly (vpsignb's negation of it overflows): packing such weights
// for it packs them for AVX2's int16 path, and an engine's AVX2-S8 blobs holding a -128 are refused.
TEST(Int8GemmTarget, Avx2S8LeavesWeightsHoldingMinus128ToTheInt16Path) {
  const CpuTarget avx2{CpuFeature::kAvx2, CpuFeature::kFma};
  const std::vector<int8_t> clean = {1, -127, 127, 5, 0, -3};
  std::vector<int8_t> extreme = clean;
  extreme[4] = -128;
  EXPECT_EQ(PackedInt8Weights(clean.data(), 2, 3, Int8Isa::kAvx2S8, avx2).isa(), Int8Isa::kAvx2S8);
  EXPECT_EQ(PackedInt8Weights(extreme.data(), 2, 3, Int8Isa::kAvx2S8, avx2).isa(), Int8Isa::kAvx2);
  const PackedInt8Weights packed(clean.data(), 2, 3, Int8Isa::kAvx2S8, avx2);
  EXPECT_TRUE(PackedInt8Weights::from_blobs(packed.blobs(), 2, 3, Int8Isa::kAvx2S8, avx2).has_value());
  std::vector<Tensor> blobs = {packed.blobs()[0].clone(), packed.blobs()[1].clone()};
  blobs[0].data<int8_t>()[0] = -128;
  EXPECT_FALSE(PackedInt8Weights::from_blobs(blobs, 2, 3, Int8Isa::kAvx2S8, avx2).has_value());
}

// Narrowing the target takes an ISA away from packing and restoring, whatever this CPU has: VNNI needs
// avx512f, avx512bw and avx512vnni; AVX2 avx2; the reference nothing. Packing is data layout, so a target
// wider than this CPU packs (an engine for another machine).
TEST(Int8GemmTarget, RefusesAnIsaTheTargetLacks) {
  const std::vector<int8_t> w(4, 1);
  const CpuTarget avx2_only{CpuFeature::kAvx2, CpuFeature::kFma};
  const CpuTarget no_bw{CpuFeature::kAvx2, CpuFeature::kAvx512f, CpuFeature::kAvx512vnni};
  EXPECT_EQ(available_int8_isas(CpuTarget{}), std::vector<Int8Isa>{Int8Isa::kReference});
  EXPECT_EQ(available_int8_isas(avx2_only),
            (std::vector<Int8Isa>{Int8Isa::kReference, Int8Isa::kAvx2, Int8Isa::kAvx2S8}));
  EXPECT_EQ(best_int8_isa(no_bw), Int8Isa::kAvx2S8);
  try {
    PackedInt8Weights(w.data(), 2, 2, Int8Isa::kAvx512Vnni, avx2_only);
    FAIL() << "packed for avx512vnni under a target without it";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("avx512f, avx512bw, avx512vnni"), std::string::npos) << e.what();
  }
  EXPECT_THROW(PackedInt8Weights(w.data(), 2, 2, Int8Isa::kAvx512Vnni, no_bw), Error);
  EXPECT_THROW(PackedInt8Weights(w.data(), 2, 2, Int8Isa::kAvx2, CpuTarget{}), Error);
  const CpuTarget vnni = runtime::kernels::int8_isa_features(Int8Isa::kAvx512Vnni);
  const PackedInt8Weights packed(w.data(), 2, 2, Int8Isa::kAvx512Vnni, vnni);  // on any CPU: layout only
  EXPECT_TRUE(PackedInt8Weights::from_blobs(packed.blobs(), 2, 2, Int8Isa::kAvx512Vnni, vnni).has_value());
  EXPECT_FALSE(PackedInt8Weights::from_blobs(packed.blobs(), 2, 2, Int8Isa::kAvx512Vnni, avx2_only).has_value());
}

// ---- Fusion through the Session.

onnx::Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                std::map<std::string, onnx::Attribute> attrs = {}) {
  onnx::Node n;
  n.name = "/" + out.at(0) + "/" + op;
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(attrs);
  return n;
}

onnx::Attribute int_attr(int64_t v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInt;
  a.i = v;
  return a;
}

// x [2, 5, K] -> Q -> DQ -> MatMul(W0 [K, N]) -> Relu -> Q -> DQ -> MatMul(W1 [N, 3]) -> y,
// weights int8 behind DequantizeLinear, per-channel on W0, per-tensor on W1.
onnx::Model qdq_model(int64_t k, int64_t n, DType act, std::vector<std::string> extra_outputs = {}) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> byte(-127, 127);
  onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.inputs.push_back({"x", DType::kFloat32, {2, 5, k}, true});
  g.outputs.push_back({"y", DType::kFloat32, {2, 5, 3}, true});
  for (const auto& e : extra_outputs) g.outputs.push_back({e, DType::kUndefined, {}, false});
  auto int8_matrix = [&](int64_t rows, int64_t cols) {
    Tensor t = Tensor::empty(DType::kInt8, {rows, cols});
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>(byte(rng));
    return t;
  };
  g.initializers["W0"] = int8_matrix(k, n);
  g.initializers["W1"] = int8_matrix(n, 3);
  std::vector<float> s0(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < s0.size(); ++i) s0[i] = 0.004F + 0.001F * static_cast<float>(i % 5);
  g.initializers["W0_scale"] = Tensor::from_vector<float>({n}, s0);
  g.initializers["W1_scale"] = Tensor::scalar<float>(0.003F);
  g.initializers["xs"] = Tensor::scalar<float>(0.05F);
  g.initializers["hs"] = Tensor::scalar<float>(0.04F);
  if (act == DType::kInt8) {
    g.initializers["xz"] = Tensor::scalar<int8_t>(int8_t{3});
    g.initializers["hz"] = Tensor::scalar<int8_t>(int8_t{0});
  } else {
    g.initializers["xz"] = Tensor::scalar<uint8_t>(uint8_t{128});
    g.initializers["hz"] = Tensor::scalar<uint8_t>(uint8_t{10});
  }
  g.nodes = {node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"}),
             node("DequantizeLinear", {"xq", "xs", "xz"}, {"xd"}),
             node("DequantizeLinear", {"W0", "W0_scale"}, {"W0d"}, {{"axis", int_attr(1)}}),
             node("MatMul", {"xd", "W0d"}, {"h"}),
             node("Relu", {"h"}, {"hr"}),
             node("QuantizeLinear", {"hr", "hs", "hz"}, {"hq"}),
             node("DequantizeLinear", {"hq", "hs", "hz"}, {"hd"}),
             node("DequantizeLinear", {"W1", "W1_scale"}, {"W1d"}),
             node("MatMul", {"hd", "W1d"}, {"y"})};
  return m;
}

Tensor input(int64_t k) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0F, 2.0F);
  Tensor x = Tensor::empty(DType::kFloat32, {2, 5, k});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  return x;
}

std::size_t count_op(const onnx::Model& m, const std::string& op) {
  return static_cast<std::size_t>(
      std::count_if(m.graph.nodes.begin(), m.graph.nodes.end(), [&](const onnx::Node& n) { return n.op_type == op; }));
}

class QdqFusion : public ::testing::TestWithParam<DType> {};

TEST_P(QdqFusion, FusedMatchesFloatAndThePlanLoadsAgain) {
  const int64_t k = 37;
  const int64_t n = 21;
  runtime::SessionOptions fused_options;
  fused_options.threads = 2;
  runtime::SessionOptions float_options = fused_options;
  float_options.fuse_qdq = false;
  runtime::Session fused(qdq_model(k, n, GetParam()), fused_options);
  runtime::Session plain(qdq_model(k, n, GetParam()), float_options);
  EXPECT_EQ(count_op(fused.model(), "QMatMulF"), 2U);
  EXPECT_EQ(count_op(fused.model(), "MatMul"), 0U);
  EXPECT_EQ(count_op(fused.model(), "DequantizeLinear"), 0U);  // nothing else read them
  EXPECT_EQ(count_op(plain.model(), "QMatMulF"), 0U);
  // The plan stores the weights as int8, not as dequantized floats.
  EXPECT_EQ(fused.model().graph.initializers.at("W0").dtype(), DType::kInt8);

  const Tensor x = input(k);
  const Tensor yf = fused.run({{"x", x}}).at("y");
  const Tensor yp = plain.run({{"x", x}}).at("y");
  ASSERT_EQ(yf.shape(), yp.shape());
  // Same arithmetic up to float summation order; where that order flips the rounding of the hidden
  // activation, the output moves by about one step of it (0.04 * |W1| * 0.003 <= 0.016).
  int64_t differing = 0;
  for (int64_t i = 0; i < yf.numel(); ++i) {
    const float d = std::abs(yf.data<float>()[i] - yp.data<float>()[i]);
    EXPECT_LE(d, 0.04F) << i;
    if (d > 1e-4F) ++differing;
  }
  EXPECT_LE(differing, 2);

  // An engine file holds session.model(): the plan with its internal nodes must load and run again.
  runtime::Session again(fused.model(), fused_options);
  const Tensor ya = again.run({{"x", x}}).at("y");
  for (int64_t i = 0; i < ya.numel(); ++i) EXPECT_EQ(ya.data<float>()[i], yf.data<float>()[i]);
}

// Engine files carry QMatMulF's packed int8 weights: a Session given them restores instead of packing
// and computes bit for bit the same; a state that does not fit is refused naming the node.
TEST(QdqFusionPackedState, Int8WeightsRestoreFromTheirPackedState) {
  runtime::SessionOptions options;
  options.threads = 2;
  runtime::Session fused(qdq_model(37, 21, DType::kInt8), options);
  std::map<std::string, runtime::PackedState> states = fused.packed_states();
  std::size_t int8_states = 0;
  for (const auto& [key, state] : states) int8_states += state.layout.rfind("int8-gemm-w/1", 0) == 0;
  ASSERT_EQ(int8_states, 2U);
  runtime::SessionOptions restoring = options;
  restoring.packed_states = states;
  runtime::Session restored(fused.model(), restoring);
  const Tensor x = input(37);
  const Tensor want = fused.run({{"x", x}}).at("y");
  const Tensor got = restored.run({{"x", x}}).at("y");
  ASSERT_EQ(want.shape(), got.shape());
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_EQ(want.data<float>()[i], got.data<float>()[i]) << i;

  for (auto& [key, state] : states) {
    if (state.layout.rfind("int8-gemm-w/1", 0) == 0) state.blobs.at(1) = Tensor::empty(DType::kInt32, {3});
  }
  restoring.packed_states = states;
  EXPECT_THROW(runtime::Session(fused.model(), restoring), Error);
}

// QMatMulF restores a state packed for another ISA than the best its target has (an engine built for
// AVX2 on an AVX-512 machine): it runs that ISA's path, with that path's results (int32 sums: exactly the
// same as the other paths'); a state for an ISA the target lacks is refused (kUnsupported, naming it).
TEST(QdqFusionPackedState, RestoresAStatePackedForAnotherIsa) {
  const testing::IsaPath avx2 = int8_path(Int8Isa::kAvx2), vnni = int8_path(Int8Isa::kAvx512Vnni);
  DETRQ_SKIP_UNLESS_HOST_RUNS(avx2);
  runtime::SessionOptions narrow;
  narrow.threads = 2;
  narrow.target = CpuTarget::host().intersected(CpuTarget{CpuFeature::kAvx2, CpuFeature::kFma});
  runtime::Session packed_for_avx2(qdq_model(37, 21, DType::kInt8), narrow);
  const std::map<std::string, runtime::PackedState> states = packed_for_avx2.packed_states();
  std::size_t avx2_states = 0;
  for (const auto& [key, state] : states) {
    if (state.layout == PackedInt8Weights::layout(Int8Isa::kAvx2) ||
        state.layout == PackedInt8Weights::layout(Int8Isa::kAvx2S8)) {
      ++avx2_states;
      EXPECT_EQ(state.isa, avx2.target) << key;  // the state records what it needs
    }
  }
  ASSERT_EQ(avx2_states, 2U);

  runtime::SessionOptions host;  // the host's full target (VNNI where it has it) restores the AVX2 states
  host.threads = 2;
  host.packed_states = states;
  runtime::Session restored(packed_for_avx2.model(), host);
  const Tensor x = input(37);
  const Tensor want = packed_for_avx2.run({{"x", x}}).at("y");
  const Tensor got = restored.run({{"x", x}}).at("y");
  ASSERT_EQ(want.shape(), got.shape());
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_EQ(want.data<float>()[i], got.data<float>()[i]) << i;
  if (testing::why_host_cannot_run(vnni).empty()) {
    // And the host's own VNNI packing computes the same int32 sums.
    runtime::SessionOptions best_options;
    best_options.threads = 2;
    runtime::Session best(qdq_model(37, 21, DType::kInt8), best_options);
    const Tensor yb = best.run({{"x", x}}).at("y");
    for (int64_t i = 0; i < want.numel(); ++i) EXPECT_EQ(want.data<float>()[i], yb.data<float>()[i]) << i;
  }

  runtime::SessionOptions portable = host;  // a target without AVX2 cannot run them
  portable.target = CpuTarget{};
  try {
    runtime::Session refused(packed_for_avx2.model(), portable);
    FAIL() << "an AVX2 state was restored under a target without avx2";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("need CPU features avx2"), std::string::npos) << e.what();
  }
}

// A target wider than this CPU packs for it (the engine builder's case) but refuses to run.
TEST(QdqFusionPackedState, ATargetWiderThanTheHostPacksButDoesNotRun) {
  CpuTarget all;
  for (int f = 0; f < runtime::kCpuFeatureCount; ++f) all = all.with(static_cast<CpuFeature>(f));
  if (CpuTarget::host().has_all(all)) GTEST_SKIP() << "this CPU has every feature detrq knows: none is wider";
  runtime::SessionOptions wide;
  wide.threads = 2;
  wide.target = all;
  runtime::Session s(qdq_model(37, 21, DType::kInt8), wide);
  std::size_t vnni_states = 0;
  for (const auto& [key, state] : s.packed_states()) {
    vnni_states += state.layout == PackedInt8Weights::layout(Int8Isa::kAvx512Vnni);
  }
  EXPECT_EQ(vnni_states, 2U);
  try {
    s.run({{"x", input(37)}});
    FAIL() << "a session targeting features this CPU lacks ran";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  }
}

INSTANTIATE_TEST_SUITE_P(Activations, QdqFusion, ::testing::Values(DType::kInt8, DType::kUInt8),
                         [](const auto& info) { return std::string(core::dtype_name(info.param)); });

TEST(QdqFusionGraph, KeepsTensorsOthersReadAndReportsThem) {
  // "xd" and "W0d" are graph outputs: the MatMul still runs in int8, but both DequantizeLinear stay.
  onnx::Model m = qdq_model(8, 4, DType::kInt8, {"xd", "W0d"});
  runtime::SessionOptions options;
  options.threads = 1;
  runtime::Session s(m, options);
  EXPECT_EQ(count_op(s.model(), "QMatMulF"), 2U);
  const auto out = s.run({{"x", input(8)}});
  ASSERT_TRUE(out.count("xd") && out.count("W0d"));
  EXPECT_EQ(out.at("W0d").shape(), (core::Shape{8, 4}));
  // xd is exactly (q - 3) * 0.05 on a grid of the scale.
  const Tensor& xd = out.at("xd");
  for (int64_t i = 0; i < xd.numel(); ++i) {
    const float steps = xd.data<float>()[i] / 0.05F;
    EXPECT_NEAR(steps, std::nearbyint(steps), 1e-3F);
  }
}

TEST(QdqFusionGraph, LeavesNonZeroWeightZeroPointsAndPerRowScalesAlone) {
  onnx::Model m = qdq_model(8, 4, DType::kInt8);
  m.graph.initializers["W1_zp"] = Tensor::scalar<int8_t>(int8_t{1});
  m.graph.nodes[7].inputs.push_back("W1_zp");  // W1's DequantizeLinear now has a zero point of 1
  runtime::Session s(m, {});
  EXPECT_EQ(count_op(s.model(), "QMatMulF"), 1U);
  EXPECT_EQ(count_op(s.model(), "MatMul"), 1U);
  // The pass report says which layer stays float, and why.
  std::vector<std::string> notes;
  for (const auto& r : s.pass_reports()) {
    if (r.pass == "report-unfused-qdq") notes = r.notes;
  }
  ASSERT_EQ(notes.size(), 1U);
  EXPECT_NE(notes[0].find("'/y/MatMul' stays float"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("zero point is not 0"), std::string::npos) << notes[0];
}

TEST(QdqFusionBadInput, RefusesTheInternalDomainInAModelDetrqDidNotPlan) {
  onnx::Model m = qdq_model(8, 4, DType::kInt8);
  runtime::Session planned(m, {});
  onnx::Model forged = planned.model();
  forged.metadata.clear();
  try {
    runtime::Session s(forged, {});
    FAIL() << "a hand-made com.detrq node was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("com.detrq"), std::string::npos) << e.what();
  }
}

TEST(QdqFusionBadInput, RefusesAMalformedInternalNode) {
  onnx::Model m = qdq_model(8, 4, DType::kInt8);
  runtime::Session planned(m, {});
  onnx::Model broken = planned.model();
  for (auto& nd : broken.graph.nodes) {
    if (nd.op_type == "QMatMulF") nd.inputs[3] = "x";  // a float, non-constant "weight"
  }
  EXPECT_THROW(runtime::Session(broken, {}), Error);
}

}  // namespace
}  // namespace detrq

namespace detrq {
namespace {

onnx::Attribute ints_attr(std::vector<int64_t> v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}

// x [1, 3, 9, 7] -> Q -> DQ -> Conv(W int8 [5, 3, 3, 3] per output channel, bias; pads, strides,
// dilations all uneven) -> y. A nonzero activation zero point checks that padding dequantizes to 0.
onnx::Model qdq_conv_model(DType act) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(-127, 127);
  onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.inputs.push_back({"x", DType::kFloat32, {1, 3, 9, 7}, true});
  g.outputs.push_back({"y", DType::kFloat32, {}, false});
  Tensor w = Tensor::empty(DType::kInt8, {5, 3, 3, 3});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>(byte(rng));
  g.initializers["W"] = w;
  g.initializers["W_scale"] = Tensor::from_vector<float>({5}, {0.01F, 0.02F, 0.005F, 0.03F, 0.015F});
  g.initializers["W_zp"] = Tensor::zeros(DType::kInt8, {5});
  g.initializers["B"] = Tensor::from_vector<float>({5}, {0.5F, -0.25F, 0.0F, 1.0F, -2.0F});
  g.initializers["xs"] = Tensor::scalar<float>(0.05F);
  if (act == DType::kInt8) {
    g.initializers["xz"] = Tensor::scalar<int8_t>(int8_t{-20});
  } else {
    g.initializers["xz"] = Tensor::scalar<uint8_t>(uint8_t{140});
  }
  onnx::Node conv = node("Conv", {"xd", "Wd", "B"}, {"y"},
                         {{"pads", ints_attr({1, 0, 2, 1})}, {"strides", ints_attr({2, 1})},
                          {"dilations", ints_attr({1, 2})}, {"kernel_shape", ints_attr({3, 3})}});
  g.nodes = {node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"}), node("DequantizeLinear", {"xq", "xs", "xz"}, {"xd"}),
             node("DequantizeLinear", {"W", "W_scale", "W_zp"}, {"Wd"}, {{"axis", int_attr(0)}}), conv};
  return m;
}

class QdqConvFusion : public ::testing::TestWithParam<DType> {};

TEST_P(QdqConvFusion, FusedConvMatchesTheFloatConv) {
  runtime::SessionOptions fused_options;
  fused_options.threads = 2;
  runtime::SessionOptions float_options = fused_options;
  float_options.fuse_qdq = false;
  runtime::Session fused(qdq_conv_model(GetParam()), fused_options);
  runtime::Session plain(qdq_conv_model(GetParam()), float_options);
  EXPECT_EQ(count_op(fused.model(), "QConvF"), 1U);
  EXPECT_EQ(count_op(plain.model(), "QConvF"), 0U);
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0F, 3.0F);
  Tensor x = Tensor::empty(DType::kFloat32, {1, 3, 9, 7});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  const Tensor yf = fused.run({{"x", x}}).at("y");
  const Tensor yp = plain.run({{"x", x}}).at("y");
  ASSERT_EQ(yf.shape(), (core::Shape{1, 5, 5, 4}));  // (9+1+2-2-1)/2+1, (7+0+1-4-1)/1+1
  ASSERT_EQ(yf.shape(), yp.shape());
  // One layer: the same products, summed exactly in int32 against in float.
  for (int64_t i = 0; i < yf.numel(); ++i) {
    EXPECT_NEAR(yf.data<float>()[i], yp.data<float>()[i], 1e-4F + 1e-5F * std::abs(yp.data<float>()[i])) << i;
  }
  runtime::Session again(fused.model(), fused_options);
  const Tensor ya = again.run({{"x", x}}).at("y");
  for (int64_t i = 0; i < ya.numel(); ++i) EXPECT_EQ(ya.data<float>()[i], yf.data<float>()[i]);
}

INSTANTIATE_TEST_SUITE_P(Activations, QdqConvFusion, ::testing::Values(DType::kInt8, DType::kUInt8),
                         [](const auto& info) { return std::string(core::dtype_name(info.param)); });

TEST(QdqConvFusionGraph, LeavesGroupedConvsAlone) {
  onnx::Model m = qdq_conv_model(DType::kInt8);
  m.graph.nodes[3].attributes["group"] = int_attr(3);
  m.graph.initializers["W"] = Tensor::zeros(DType::kInt8, {6, 1, 3, 3});
  m.graph.initializers["W_scale"] = Tensor::from_vector<float>({6}, std::vector<float>(6, 0.1F));
  m.graph.initializers["W_zp"] = Tensor::zeros(DType::kInt8, {6});
  m.graph.initializers["B"] = Tensor::zeros(DType::kFloat32, {6});
  runtime::Session s(m, {});
  EXPECT_EQ(count_op(s.model(), "QConvF"), 0U);
  EXPECT_EQ(count_op(s.model(), "Conv"), 1U);
}

}  // namespace
}  // namespace detrq

namespace detrq {
namespace {

TEST(QdqFusionGraph, WeightsGivenAsQuantizeLinearOfFloatsAreFoldedAndFused) {
  // W0 as float weights behind QuantizeLinear -> DequantizeLinear (as other quantizers write them).
  onnx::Model m = qdq_model(6, 4, DType::kInt8);
  const Tensor codes = m.graph.initializers.at("W0");
  const Tensor scale = m.graph.initializers.at("W0_scale");
  Tensor w = Tensor::empty(DType::kFloat32, codes.shape());
  for (int64_t i = 0; i < w.numel(); ++i) {
    // Code times scale, nudged by a quarter step: QuantizeLinear must round it back to the code.
    w.data<float>()[i] = (static_cast<float>(codes.data<int8_t>()[i]) + 0.25F) * scale.data<float>()[i % 4];
  }
  m.graph.initializers["W0_float"] = w;
  m.graph.initializers["W0_zp"] = Tensor::zeros(DType::kInt8, {4});
  m.graph.initializers.erase("W0");
  onnx::Node q = node("QuantizeLinear", {"W0_float", "W0_scale", "W0_zp"}, {"W0"}, {{"axis", int_attr(1)}});
  m.graph.nodes.insert(m.graph.nodes.begin(), q);
  runtime::SessionOptions options;
  options.threads = 1;
  runtime::Session fused(m, options);
  EXPECT_EQ(count_op(fused.model(), "QMatMulF"), 2U);
  EXPECT_EQ(count_op(fused.model(), "QuantizeLinear"), 2U);  // the activations' only
  ASSERT_TRUE(fused.model().graph.initializers.count("W0"));
  const Tensor& folded = fused.model().graph.initializers.at("W0");
  for (int64_t i = 0; i < folded.numel(); ++i) ASSERT_EQ(folded.data<int8_t>()[i], codes.data<int8_t>()[i]) << i;
  // The same outputs as the model with int8 initializers.
  runtime::Session direct(qdq_model(6, 4, DType::kInt8), options);
  const Tensor x = input(6);
  const Tensor a = fused.run({{"x", x}}).at("y");
  const Tensor b = direct.run({{"x", x}}).at("y");
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
}

// x -> Q -> DQ -> MatMul(W) -> Add(bias) -> Reshape to heads -> Transpose -> Mul(scalar) -> Q -> DQ -> y: the
// attention's Q, K and V as ViT exports write them. hoist-quantize-over-layout moves the Mul and the
// QuantizeLinear above the Reshape and Transpose, the QMatMulF's epilogue absorbs them, and the layout
// nodes move int8 codes. `hoisted` writes the same computation with that order already in the graph.
onnx::Model heads_model(bool hoisted) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(-127, 127);
  onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  g.inputs.push_back({"x", DType::kFloat32, {1, 6, 8}, true});
  g.outputs.push_back({"y", DType::kFloat32, {1, 2, 6, 4}, true});
  Tensor w = Tensor::empty(DType::kInt8, {8, 8});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>(byte(rng));
  std::vector<float> bias(8);
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = 0.1F * static_cast<float>(i) - 0.3F;
  g.initializers["W"] = w;
  g.initializers["W_scale"] = Tensor::scalar<float>(0.01F);
  g.initializers["bias"] = Tensor::from_vector<float>({8}, bias);
  g.initializers["xs"] = Tensor::scalar<float>(0.05F);
  g.initializers["xz"] = Tensor::scalar<int8_t>(int8_t{0});
  g.initializers["hs"] = Tensor::scalar<float>(0.02F);
  g.initializers["hz"] = Tensor::scalar<int8_t>(int8_t{-2});
  g.initializers["half"] = Tensor::scalar<float>(0.5F);
  g.initializers["heads"] = Tensor::from_vector<int64_t>({4}, {1, 6, 2, 4});
  const std::map<std::string, onnx::Attribute> perm = {{"perm", ints_attr({0, 2, 1, 3})}};
  g.nodes = {node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"}), node("DequantizeLinear", {"xq", "xs", "xz"}, {"xd"}),
             node("DequantizeLinear", {"W", "W_scale"}, {"Wd"}), node("MatMul", {"xd", "Wd"}, {"h"}),
             node("Add", {"h", "bias"}, {"hb"})};
  if (hoisted) {
    g.nodes.push_back(node("Mul", {"hb", "half"}, {"hm"}));
    g.nodes.push_back(node("QuantizeLinear", {"hm", "hs", "hz"}, {"hq"}));
    g.nodes.push_back(node("Reshape", {"hq", "heads"}, {"hr"}));
    g.nodes.push_back(node("Transpose", {"hr"}, {"ht"}, perm));
    g.nodes.push_back(node("DequantizeLinear", {"ht", "hs", "hz"}, {"y"}));
  } else {
    g.nodes.push_back(node("Reshape", {"hb", "heads"}, {"hr"}));
    g.nodes.push_back(node("Transpose", {"hr"}, {"ht"}, perm));
    g.nodes.push_back(node("Mul", {"ht", "half"}, {"hm"}));
    g.nodes.push_back(node("QuantizeLinear", {"hm", "hs", "hz"}, {"hq"}));
    g.nodes.push_back(node("DequantizeLinear", {"hq", "hs", "hz"}, {"y"}));
  }
  return m;
}

TEST(QdqFusionGraph, QuantizeHoistedOverLayoutGoesIntoTheEpilogueBitForBit) {
  runtime::SessionOptions options;
  options.threads = 2;
  runtime::Session fused(heads_model(false), options);
  // The QuantizeLinear and the Mul are in the QMatMulF (which writes codes); the input's stays.
  EXPECT_EQ(count_op(fused.model(), "QMatMulF"), 1U);
  EXPECT_EQ(count_op(fused.model(), "QuantizeLinear"), 1U);
  EXPECT_EQ(count_op(fused.model(), "Mul"), 0U);
  bool transposes_codes = false;
  for (const onnx::Node& n : fused.model().graph.nodes) {
    if (n.op_type == "Transpose") {
      const auto vi = fused.model().graph.value_info.find(n.outputs[0]);
      transposes_codes = vi != fused.model().graph.value_info.end() && vi->second.dtype == DType::kInt8;
    }
  }
  EXPECT_TRUE(transposes_codes) << "the Transpose should move the int8 codes";
  const bool reported = std::any_of(fused.pass_reports().begin(), fused.pass_reports().end(), [](const auto& r) {
    return r.pass == "hoist-quantize-over-layout" && r.rewritten == 4;  // Reshape, Transpose, Mul, QuantizeLinear
  });
  EXPECT_TRUE(reported) << "inspect --passes reports the hoisted nodes";
  // Bit for bit the graph written in the hoisted order; and within a quantization step of the Q/DQ
  // graph executed in float (fuse_qdq off: every node as the ONNX definition has it).
  runtime::Session written(heads_model(true), options);
  runtime::SessionOptions float_options = options;
  float_options.fuse_qdq = false;
  runtime::Session plain(heads_model(false), float_options);
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0F, 1.0F);
  Tensor x = Tensor::empty(DType::kFloat32, {1, 6, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  const Tensor a = fused.run({{"x", x}}).at("y");
  const Tensor b = written.run({{"x", x}}).at("y");
  const Tensor c = plain.run({{"x", x}}).at("y");
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
    EXPECT_LE(std::abs(a.data<float>()[i] - c.data<float>()[i]), 0.02F * 1.0001F) << i;
  }
}

// Q/DQ attention whose Q, K and V codes come through Transposes (the heads split): QAttentionSoftmax reads
// through them (perm_q, perm_k, perm_v), bit for bit what the graph gives when the Transposes run (here
// kept by making their outputs graph outputs, which no fusion may remove).
onnx::Model transposed_attention(bool keep_transposes) {
  onnx::Model m;
  m.opset_imports[""] = 17;
  auto& g = m.graph;
  for (const char* name : {"xq", "xk", "xv"}) g.inputs.push_back({name, DType::kFloat32, {1, 6, 2, 4}, true});
  g.outputs.push_back({"y", DType::kFloat32, {1, 2, 6, 4}, true});
  g.initializers["qs"] = Tensor::scalar<float>(0.03F);
  g.initializers["qz"] = Tensor::scalar<int8_t>(int8_t{5});
  g.initializers["ks"] = Tensor::scalar<float>(0.02F);
  g.initializers["zero"] = Tensor::scalar<int8_t>(int8_t{0});
  g.initializers["ps"] = Tensor::scalar<float>(1.0F / 255.0F);
  g.initializers["pz"] = Tensor::scalar<uint8_t>(uint8_t{0});
  const auto perm = [](std::vector<int64_t> p) { return std::map<std::string, onnx::Attribute>{{"perm", ints_attr(p)}}; };
  g.nodes = {node("QuantizeLinear", {"xq", "qs", "qz"}, {"q8"}), node("Transpose", {"q8"}, {"q8t"}, perm({0, 2, 1, 3})),
             node("DequantizeLinear", {"q8t", "qs", "qz"}, {"qd"}),
             node("QuantizeLinear", {"xk", "ks", "zero"}, {"k8"}), node("Transpose", {"k8"}, {"k8t"}, perm({0, 2, 3, 1})),
             node("DequantizeLinear", {"k8t", "ks", "zero"}, {"kd"}),
             node("QuantizeLinear", {"xv", "ks", "zero"}, {"v8"}), node("Transpose", {"v8"}, {"v8t"}, perm({0, 2, 1, 3})),
             node("DequantizeLinear", {"v8t", "ks", "zero"}, {"vd"}),
             node("MatMul", {"qd", "kd"}, {"s"}), node("Softmax", {"s"}, {"p"}, {{"axis", int_attr(-1)}}),
             node("QuantizeLinear", {"p", "ps", "pz"}, {"p8"}), node("DequantizeLinear", {"p8", "ps", "pz"}, {"pd"}),
             node("MatMul", {"pd", "vd"}, {"y"})};
  if (keep_transposes) {
    for (const char* t : {"q8t", "k8t", "v8t"}) g.outputs.push_back({t, DType::kUndefined, {}, false});
  }
  return m;
}

TEST(QdqFusionGraph, QdqAttentionReadsItsCodesThroughTheirTransposes) {
  // Every int8 ISA this CPU runs (each packs the strided K and V its own way).
  for (const Int8Isa isa : available_int8_isas(CpuTarget::host())) {
    SCOPED_TRACE(int8_isa_name(isa));
    runtime::SessionOptions options;
    options.threads = 2;
    options.target = runtime::kernels::int8_isa_features(isa);
    runtime::Session absorbed(transposed_attention(false), options);
    runtime::Session kept(transposed_attention(true), options);
    ASSERT_EQ(count_op(absorbed.model(), "QAttentionSoftmax"), 1U);
    EXPECT_EQ(count_op(absorbed.model(), "Transpose"), 0U);
    EXPECT_EQ(count_op(kept.model(), "Transpose"), 3U);
    ASSERT_EQ(count_op(kept.model(), "QAttentionSoftmax"), 1U);
    for (const onnx::Node& n : absorbed.model().graph.nodes) {
      if (n.op_type != "QAttentionSoftmax") continue;
      EXPECT_EQ(n.attr_ints("perm_q"), (std::vector<int64_t>{0, 2, 1, 3}));
      EXPECT_EQ(n.attr_ints("perm_k"), (std::vector<int64_t>{0, 2, 3, 1}));
      EXPECT_EQ(n.attr_ints("perm_v"), (std::vector<int64_t>{0, 2, 1, 3}));
    }
    std::mt19937 rng(21);
    std::normal_distribution<float> dist(0.0F, 1.0F);
    std::map<std::string, Tensor> inputs;
    for (const char* name : {"xq", "xk", "xv"}) {
      Tensor x = Tensor::empty(DType::kFloat32, {1, 6, 2, 4});
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
      inputs[name] = x;
    }
    const Tensor a = absorbed.run(inputs).at("y");
    const Tensor b = kept.run(inputs).at("y");
    ASSERT_EQ(a.shape(), b.shape());
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
  }
}

// LayerNormalization -> QuantizeLinear (a transformer block's norm feeding the next layer's codes) becomes
// QLayerNormalization writing the codes, bit for bit the two nodes run one after the other (the plan
// without operator fusions), with and without B, signed and unsigned codes.
TEST(QdqFusionGraph, LayerNormWritesTheCodesOfItsQuantizeLinear) {
  for (const bool with_bias : {true, false}) {
    for (const DType codes : {DType::kInt8, DType::kUInt8}) {
      onnx::Model m;
      m.opset_imports[""] = 17;
      auto& g = m.graph;
      g.inputs.push_back({"x", DType::kFloat32, {3, 5, 40}, true});
      g.outputs.push_back({"y", DType::kFloat32, {3, 5, 40}, true});
      std::vector<float> gamma(40), beta(40);
      for (std::size_t i = 0; i < gamma.size(); ++i) {
        gamma[i] = 0.5F + 0.05F * static_cast<float>(i % 7);
        beta[i] = 0.1F * static_cast<float>(i % 5) - 0.2F;
      }
      g.initializers["gamma"] = Tensor::from_vector<float>({40}, gamma);
      g.initializers["beta"] = Tensor::from_vector<float>({40}, beta);
      g.initializers["s"] = Tensor::scalar<float>(0.017F);
      g.initializers["z"] = codes == DType::kInt8 ? Tensor::scalar<int8_t>(int8_t{-3}) : Tensor::scalar<uint8_t>(uint8_t{120});
      std::vector<std::string> ln_inputs = {"x", "gamma"};
      if (with_bias) ln_inputs.push_back("beta");
      g.nodes = {node("LayerNormalization", ln_inputs, {"n"}, {{"axis", int_attr(-1)}}),
                 node("QuantizeLinear", {"n", "s", "z"}, {"nq"}), node("DequantizeLinear", {"nq", "s", "z"}, {"y"})};
      runtime::SessionOptions options;
      options.threads = 2;
      runtime::Session fused(m, options);
      options.fuse_operators = false;
      runtime::Session apart(m, options);
      EXPECT_EQ(count_op(fused.model(), "QLayerNormalization"), 1U);
      EXPECT_EQ(count_op(fused.model(), "QuantizeLinear"), 0U);
      EXPECT_EQ(count_op(apart.model(), "LayerNormalization"), 1U);
      std::mt19937 rng(4);
      std::normal_distribution<float> dist(0.5F, 2.0F);
      Tensor x = Tensor::empty(DType::kFloat32, {3, 5, 40});
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
      const Tensor a = fused.run({{"x", x}}).at("y");
      const Tensor b = apart.run({{"x", x}}).at("y");
      for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
    }
  }
}

}  // namespace
}  // namespace detrq
