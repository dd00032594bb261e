// The int8 GEMM's requantizing epilogue (bias, erf GELU, column scale, residual, then QuantizeLinear's
// arithmetic) on every ISA this CPU has, and the vectorized quantization of float runs, against direct
// computations written here from the ONNX definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "detrq/core/thread_pool.h"
#include "runtime/kernels/int8_gemm/int8_gemm.h"
#include "runtime/kernels/quantization/requantize.h"

namespace detrq {
namespace {

using runtime::kernels::available_int8_isas;
using runtime::kernels::int8_gemm;
using runtime::kernels::int8_isa_name;
using runtime::kernels::Int8GemmOutput;
using runtime::kernels::PackedInt8Weights;

// ONNX QuantizeLinear: saturate(round_half_to_even(x / scale) + zero_point); NaN maps to the zero point.
int32_t onnx_code(float x, float scale, int32_t zp, bool is_signed) {
  const float lo = is_signed ? -128.0F : 0.0F, hi = is_signed ? 127.0F : 255.0F;
  const float v = std::nearbyint(x / scale) + static_cast<float>(zp);
  if (std::isnan(v)) return zp;
  return static_cast<int32_t>(std::min(hi, std::max(lo, v)));
}

std::vector<float> awkward_values(float scale) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.5F * scale, 1.5F * scale, 2.5F * scale, -0.5F * scale, -2.5F * scale, 1e30F,
                          -1e30F, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.0F, -0.0F};
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> d(-300.0F * scale, 300.0F * scale);
  while (x.size() < 77) x.push_back(d(gen));  // not a multiple of 16 or 8: the tails too
  return x;
}

// Every vectorized path the host runs (AVX-512, AVX2 and FMA: the host's target and the host narrowed to
// AVX2) and the portable one, each against the definition.
std::vector<runtime::CpuTarget> targets() {
  const runtime::CpuTarget host = runtime::CpuTarget::host();
  std::vector<runtime::CpuTarget> out{host};
  const runtime::CpuTarget avx2 = host.intersected(runtime::CpuTarget::parse("avx2,fma"));
  if (avx2 != host && avx2.avx2_fma()) out.push_back(avx2);
  out.push_back(runtime::CpuTarget::parse("sse4.2"));
  return out;
}

TEST(Requantize, QuantizeRunGivesOnnxCodes) {
  for (const runtime::CpuTarget& target : targets()) {
    SCOPED_TRACE(target.to_string());
    const float scale = 0.037F;
    const std::vector<float> x = awkward_values(scale);
    for (const bool is_signed : {true, false}) {
      const int32_t zp = is_signed ? -3 : 131;
      std::vector<uint8_t> y(x.size(), 0xAA);
      runtime::kernels::quantize_run(x.data(), y.data(), is_signed, static_cast<int64_t>(x.size()), scale, zp,
                                     target);
      for (std::size_t i = 0; i < x.size(); ++i) {
        const int32_t got = is_signed ? static_cast<int8_t>(y[i]) : y[i];
        EXPECT_EQ(got, onnx_code(x[i], scale, zp, is_signed)) << "x=" << x[i] << " signed=" << is_signed;
      }
    }
  }
}

TEST(Requantize, FakeQuantizeIsQuantizeThenDequantize) {
  for (const runtime::CpuTarget& target : targets()) {
    SCOPED_TRACE(target.to_string());
    const float scale = 1.0F / 255.0F, pre = 0.8F;
    const std::vector<float> x = awkward_values(scale);
    for (const bool is_signed : {true, false}) {
      const int32_t zp = is_signed ? -128 : 0;
      std::vector<float> y = x;
      runtime::kernels::fake_quantize_run(y.data(), is_signed, static_cast<int64_t>(y.size()), pre, scale, zp,
                                          target);
      for (std::size_t i = 0; i < x.size(); ++i) {
        const float want = static_cast<float>(onnx_code(x[i] * pre, scale, zp, is_signed) - zp) * scale;
        // One product by pre / scale instead of the division: another code only next to a half-way point.
        const double exact = static_cast<double>(x[i]) * pre / scale;
        if (std::isfinite(exact) && std::abs(exact - std::floor(exact) - 0.5) < 1e-4) {
          EXPECT_LE(std::abs(y[i] - want), scale * 1.0001F) << "x=" << x[i];
        } else {
          EXPECT_EQ(y[i], want) << "x=" << x[i];
        }
      }
    }
  }
}

TEST(Requantize, QuantizeByProductGivesOnnxCodesAwayFromHalfWayPoints) {
  for (const runtime::CpuTarget& target : targets()) {
    SCOPED_TRACE(target.to_string());
    const float scale = 0.037F;
    const std::vector<float> x = awkward_values(scale);
    for (const bool is_signed : {true, false}) {
      const int32_t zp = is_signed ? 4 : 120;
      std::vector<uint8_t> y(x.size());
      runtime::kernels::quantize_run_by_product(x.data(), y.data(), is_signed, static_cast<int64_t>(x.size()),
                                                1.0F / scale, zp, target);
      for (std::size_t i = 0; i < x.size(); ++i) {
        const int32_t got = is_signed ? static_cast<int8_t>(y[i]) : y[i];
        const int32_t want = onnx_code(x[i], scale, zp, is_signed);
        const double exact = static_cast<double>(x[i]) / scale;
        if (std::isfinite(exact) && std::abs(exact - std::floor(exact) - 0.5) < 1e-4) {
          EXPECT_LE(std::abs(got - want), 1) << "x=" << x[i];
        } else {
          EXPECT_EQ(got, want) << "x=" << x[i];
        }
      }
    }
  }
}

struct Problem {
  int64_t m = 29, k = 70, n = 45;  // edges in every direction of every tile shape
  std::vector<int8_t> a, w;
  std::vector<float> w_scale, bias, col_scale, residual;
  float a_scale = 0.02F;
  int32_t a_zp = 5;
  Problem() {
    std::mt19937 gen(3);
    std::uniform_int_distribution<int> code(-128, 127);
    std::uniform_int_distribution<int> weight(-127, 127);  // no -128: the AVX2-S8 path is the one that runs
    std::uniform_real_distribution<float> u(-1.0F, 1.0F);
    for (int64_t i = 0; i < m * k; ++i) a.push_back(static_cast<int8_t>(code(gen)));
    for (int64_t i = 0; i < k * n; ++i) w.push_back(static_cast<int8_t>(weight(gen)));
    for (int64_t j = 0; j < n; ++j) {
      w_scale.push_back(0.001F * (1.0F + 0.5F * u(gen)));
      bias.push_back(u(gen));
      col_scale.push_back(0.5F + u(gen));
    }
    for (int64_t i = 0; i < m * n; ++i) residual.push_back(u(gen));
  }
  // The float result of the whole chain, in double, from the definitions.
  double expected(int64_t r, int64_t j) const {
    int64_t acc = 0;
    for (int64_t kk = 0; kk < k; ++kk) acc += (a[r * k + kk] - a_zp) * static_cast<int64_t>(w[kk * n + j]);
    double v = static_cast<double>(acc) * a_scale * w_scale[j] + bias[j];
    v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    return v * col_scale[j] + residual[r * n + j];
  }
};

TEST(Int8GemmEpilogue, EveryIsaAppliesTheChainAndRequantizes) {
  const Problem p;
  core::ThreadPool pool(2);
  const float out_scale = 0.011F;
  const int32_t out_zp = -7;
  // Every ISA's tiles, each finished by every epilogue the host runs (AVX-512, AVX2, portable).
  std::vector<std::pair<runtime::kernels::Int8Isa, runtime::CpuTarget>> paths;
  for (const auto isa : available_int8_isas(runtime::CpuTarget::host())) {
    for (const runtime::CpuTarget& target : targets()) paths.emplace_back(isa, target);
  }
  for (const auto& [isa, target] : paths) {
    SCOPED_TRACE(std::string(int8_isa_name(isa)) + " tiles, epilogue for " + target.to_string());
    const PackedInt8Weights packed(p.w.data(), p.k, p.n, isa, runtime::CpuTarget::host());
    ASSERT_EQ(packed.isa(), isa);
    std::vector<uint8_t> scratch(packed.scratch_bytes(p.m) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
    Int8GemmOutput out;
    out.target = target;
    out.epilogue.bias = p.bias.data();
    out.epilogue.activation = runtime::kernels::GemmActivation::kGeluErf;
    out.epilogue.col_scale = p.col_scale.data();
    out.epilogue.residual = p.residual.data();
    std::vector<float> floats(static_cast<std::size_t>(p.m * p.n));
    out.y = floats.data();
    int8_gemm(packed, p.a.data(), true, p.m, p.a_zp, p.a_scale, p.w_scale.data(), true, out, aligned, pool);
    std::vector<int8_t> codes(static_cast<std::size_t>(p.m * p.n));
    out.y = codes.data();
    out.quantize = true;
    out.out_scale = out_scale;
    out.out_zero_point = out_zp;
    int8_gemm(packed, p.a.data(), true, p.m, p.a_zp, p.a_scale, p.w_scale.data(), true, out, aligned, pool);
    int near_half = 0;
    for (int64_t r = 0; r < p.m; ++r) {
      for (int64_t j = 0; j < p.n; ++j) {
        const double want = p.expected(r, j);
        const std::size_t i = static_cast<std::size_t>(r * p.n + j);
        ASSERT_NEAR(floats[i], want, 1e-4 * std::max(1.0, std::abs(want))) << r << "," << j;
        // The codes are those of the float result; where that lies within float error of a rounding
        // boundary either neighbour is right.
        const double exact = want / out_scale + out_zp;
        const bool at_half = std::abs(exact - std::floor(exact) - 0.5) < 1e-3;
        near_half += at_half;
        const int32_t code = onnx_code(floats[i], out_scale, out_zp, true);
        if (!at_half) {
          EXPECT_EQ(codes[i], code) << r << "," << j;
        }
        EXPECT_LE(std::abs(codes[i] - code), 1) << r << "," << j;
      }
    }
    EXPECT_LT(near_half, 10);
  }
}

}  // namespace
}  // namespace detrq
