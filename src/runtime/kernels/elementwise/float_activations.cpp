// Branch-free float32 exp/erf/sigmoid written so that g++ vectorizes them (with -fno-trapping-math,
// set for this file in CMakeLists.txt), built twice: for AVX2+FMA and for the baseline, the session's
// CpuTarget choosing.
#include "runtime/kernels/elementwise/float_activations.h"

#include "runtime/kernels/math/gelu_approx.h"

#include <cstdint>
#include <limits>

namespace detrq::runtime::kernels {
namespace {

// Plain selects and __builtin_bit_cast: std::fmin/fmax/floor stay library calls under the default flags,
// and std::bit_cast is not inlined into the AVX2 clone (different target), which blocks vectorization.
[[gnu::always_inline]] inline float select_min(float a, float b) { return a < b ? a : b; }
[[gnu::always_inline]] inline float select_max(float a, float b) { return a > b ? a : b; }

// x = n*ln2 + r with |r| <= ln2/2; e^r by its Taylor series to degree 7 (truncation error 5e-9); 2^n
// built in the exponent bits as two factors so n = 128 still fits.
[[gnu::always_inline]] inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341F;
  constexpr float kLn2Hi = 0.693145751953125F;  // few mantissa bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = 1.42860682030941723212e-6F;
  constexpr float kRound = 12582912.0F;         // 1.5 * 2^23: adding and removing it rounds to nearest
  const float xc = select_min(select_max(x, -87.33654F), 88.72283F);
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0F / 5040.0F;
  p = p * r + 1.0F / 720.0F;
  p = p * r + 1.0F / 120.0F;
  p = p * r + 1.0F / 24.0F;
  p = p * r + 1.0F / 6.0F;
  p = p * r + 0.5F;
  p = p * r + 1.0F;
  p = p * r + 1.0F;
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  float result = p * __builtin_bit_cast(float, (n1 + 127) << 23) * __builtin_bit_cast(float, (n2 + 127) << 23);
  result = x > 88.72283F ? std::numeric_limits<float>::infinity() : result;
  result = x < -87.33654F ? 0.0F : result;
  return x != x ? x : result;
}

// Taylor series of erf(x)/x below |x| = 0.5 (keeps relative accuracy near zero), Abramowitz & Stegun
// 7.1.26 above (absolute error 1.5e-7); both are computed and one selected.
[[gnu::always_inline]] inline float erf_approx(float x) {
  const uint32_t sign = __builtin_bit_cast(uint32_t, x) & 0x80000000u;
  const float ax = __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, x) ^ sign);
  const float x2 = x * x;
  float s = 1.0F / 9360.0F;
  s = s * x2 - 1.0F / 1320.0F;
  s = s * x2 + 1.0F / 216.0F;
  s = s * x2 - 1.0F / 42.0F;
  s = s * x2 + 1.0F / 10.0F;
  s = s * x2 - 1.0F / 3.0F;
  s = s * x2 + 1.0F;
  const float small = 1.12837916709551257F * x * s;
  // Above 4.5, erf rounds to +-1 in float anyway; clamping there also keeps q * t * e^(-x^2) out of the
  // subnormal range, where the arithmetic would be about a hundred times slower.
  const float axc = select_min(ax, 4.5F);
  const float t = 1.0F / (1.0F + 0.3275911F * axc);
  float q = 1.061405429F;
  q = q * t - 1.453152027F;
  q = q * t + 1.421413741F;
  q = q * t - 0.284496736F;
  q = q * t + 0.254829592F;
  const float large = 1.0F - q * t * exp_approx(-axc * axc);
  const float signed_large = __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, large) | sign);
  const float result = ax < 0.5F ? small : signed_large;
  return x != x ? x : result;
}

// Each loop twice, from one body: built for AVX2+FMA and for the baseline; the target picks (it used to
// be target_clones, which asks the CPU and not the session). Functor types, not function-pointer template
// arguments, which GCC 12 rejects as constant expressions under -fsanitize=undefined.
struct ErfFn {
  [[gnu::always_inline]] float operator()(float x) const { return erf_approx(x); }
};
struct ExpFn {
  [[gnu::always_inline]] float operator()(float x) const { return exp_approx(x); }
};
struct SigmoidFn {
  // 1 / (1 + e^-x): e^-x overflowing to inf gives 0, underflowing to 0 gives 1.
  [[gnu::always_inline]] float operator()(float x) const { return 1.0F / (1.0F + exp_approx(-x)); }
};
template <typename F>
[[gnu::always_inline]] inline void map_loop(const float* x, float* y, int64_t n) {
  const F f{};
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
template <typename F>
[[gnu::target("avx2,fma")]] void map_avx2(const float* x, float* y, int64_t n) {
  map_loop<F>(x, y, n);
}
template <typename F>
void map_plain(const float* x, float* y, int64_t n) {
  map_loop<F>(x, y, n);
}
template <typename F>
void map(const float* x, float* y, int64_t n, const CpuTarget& target) {
  if (target.avx2_fma()) {
    map_avx2<F>(x, y, n);
  } else {
    map_plain<F>(x, y, n);
  }
}

// GELU's two builds differ in more than speed: with FMA its multiply-adds are fused, as they are in the
// AVX2 and AVX-512 micro-kernels' epilogues, which must give the same bits (gelu_uses_fma()).
[[gnu::target("avx2,fma")]] void gelu_erf_fma(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = detail::gelu_approx<float, int32_t, true>(x[i]);
}
void gelu_erf_plain(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = detail::gelu_approx<float, int32_t, false>(x[i]);
}

}  // namespace

void erf_f32(const float* x, float* y, int64_t n, const CpuTarget& target) { map<ErfFn>(x, y, n, target); }
void exp_f32(const float* x, float* y, int64_t n, const CpuTarget& target) { map<ExpFn>(x, y, n, target); }
void sigmoid_f32(const float* x, float* y, int64_t n, const CpuTarget& target) { map<SigmoidFn>(x, y, n, target); }

bool gelu_uses_fma(const CpuTarget& target) { return target.avx2_fma(); }

void gelu_erf_f32(const float* x, float* y, int64_t n, const CpuTarget& target) {
  if (gelu_uses_fma(target)) {
    gelu_erf_fma(x, y, n);
  } else {
    gelu_erf_plain(x, y, n);
  }
}

}  // namespace detrq::runtime::kernels
