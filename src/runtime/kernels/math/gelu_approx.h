// GELU, x * (1 + erf(x / sqrt 2)) / 2, written once for a float and for g++ vector types of floats (8 or
// 16 lanes, with the int32 vector of as many lanes): the elementwise loop (float_activations.cpp) and the
// GEMM micro-kernels' epilogues (gemm.cpp, on registers before the store) compute bit for bit the same,
// with fused multiply-adds where the CPU has FMA (gelu_uses_fma()) and without elsewhere.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

namespace detrq::runtime::kernels::detail {

typedef float v8sf __attribute__((vector_size(32)));
typedef int32_t v8si __attribute__((vector_size(32)));
typedef float v16sf __attribute__((vector_size(64)));
typedef int32_t v16si __attribute__((vector_size(64)));

// Through the normal tail: x * Phi(x), where Phi(-|x|) = erfc(u) / 2 with u = |x| / sqrt(2) and
// Phi(|x|) = 1 - Phi(-|x|). erfc(u) is A&S 7.1.26 (absolute error 1.5e-7, so 7.5e-8 in Phi: GELU needs no
// relative accuracy near 0, where Phi is 1/2), with one exponential over a bounded range and no second
// branch. F is float (I int32_t) or a vector type (I the int32 vector of as many lanes). Every product and
// sum is written out (no contraction under -std=c++20), so each F gives the same results.
// Always inlined into code built for the vector width, so the ABI of passing vectors by value, which g++
// warns about for callers without AVX, never comes into play.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
// clang (14) refuses, as an error where g++ only warns, a call that passes or returns a vector wider than
// 128 bits between a function built for AVX (or AVX-512) and one built without, always_inline or not. So
// where the code shared by the ISAs meets a function with a target (the micro-kernels, the FMA forms
// below), vectors cross wrapped in Lanes, a struct, which that check leaves alone; inlined, the code is the
// same.
template <typename F>
struct Lanes {
  F v;
};

// a * b + c: one fused multiply-add (one rounding) where Fma is set, else a product and a sum (two). The
// vector forms carry their target, so they can only be inlined into code built for it (the micro-kernels);
// a float's __builtin_fmaf is the instruction there and glibc's fmaf elsewhere: the same bits either way.
[[gnu::target("avx2,fma")]] inline Lanes<v8sf> fused_mul_add(Lanes<v8sf> a, Lanes<v8sf> b, Lanes<v8sf> c) {
  return {__builtin_bit_cast(v8sf, _mm256_fmadd_ps(__builtin_bit_cast(__m256, a.v), __builtin_bit_cast(__m256, b.v),
                                                   __builtin_bit_cast(__m256, c.v)))};
}
[[gnu::target("avx512f")]] inline Lanes<v16sf> fused_mul_add(Lanes<v16sf> a, Lanes<v16sf> b, Lanes<v16sf> c) {
  return {__builtin_bit_cast(v16sf, _mm512_fmadd_ps(__builtin_bit_cast(__m512, a.v), __builtin_bit_cast(__m512, b.v),
                                                    __builtin_bit_cast(__m512, c.v)))};
}
inline float fused_mul_add(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

template <bool Fma, typename F>
[[gnu::always_inline]] inline F mul_add(F a, F b, F c) {
  if constexpr (!Fma) {
    return a * b + c;
  } else if constexpr (std::is_same_v<F, float>) {
    return fused_mul_add(a, b, c);
  } else {
    return fused_mul_add(Lanes<F>{a}, Lanes<F>{b}, Lanes<F>{c}).v;
  }
}

template <typename F, typename I, bool Fma = false>
[[gnu::always_inline]] inline F gelu_approx(F x) {
  const F zero{};
  const F ax = __builtin_bit_cast(F, __builtin_bit_cast(I, x) & 0x7fffffff);
  const F u_exact = ax * 0.70710678118654752F;
  const F six = zero + 6.0F;
  const F u = u_exact < six ? u_exact : six;  // erfc(6) = 2e-17: the tail is 0 beyond (NaN lands here too)
  const F one = zero + 1.0F;
  const F t = one / mul_add<Fma>(zero + 0.3275911F, u, one);
  F q = zero + 1.061405429F;
  q = mul_add<Fma>(q, t, zero - 1.453152027F);
  q = mul_add<Fma>(q, t, zero + 1.421413741F);
  q = mul_add<Fma>(q, t, zero - 0.284496736F);
  q = mul_add<Fma>(q, t, zero + 0.254829592F);
  // e^z for z = -u^2 in [-36, 0]: z = n*ln2 + r with n in [-52, 0], so 2^n is one normal factor and no
  // range checks are needed; degree 6 leaves a relative error of 1.2e-7.
  constexpr float kRound = 12582912.0F;  // 1.5 * 2^23: adding and removing it rounds to nearest
  const F z = -u * u;
  const F n = mul_add<Fma>(z, zero + 1.44269504088896341F, zero + kRound) - kRound;
  const F r = mul_add<Fma>(n, zero - 1.42860682030941723212e-6F, mul_add<Fma>(n, zero - 0.693145751953125F, z));
  F p = zero + 1.0F / 720.0F;
  p = mul_add<Fma>(p, r, zero + 1.0F / 120.0F);
  p = mul_add<Fma>(p, r, zero + 1.0F / 24.0F);
  p = mul_add<Fma>(p, r, zero + 1.0F / 6.0F);
  p = mul_add<Fma>(p, r, zero + 0.5F);
  p = mul_add<Fma>(p, r, one);
  p = mul_add<Fma>(p, r, one);
  I ni;
  if constexpr (std::is_same_v<F, float>) {
    ni = static_cast<int32_t>(n);
  } else {
    ni = __builtin_convertvector(n, I);
  }
  const F e = p * __builtin_bit_cast(F, (ni + 127) << 23);
  F tail = 0.5F * q * t * e;
  tail = u_exact > six ? zero : tail;  // so that GELU(-inf) = -inf * 0 = NaN, as x * (1 + erf) / 2 gives
  return x * (x < zero ? tail : 1.0F - tail);
}

// The vector form for callers built for the vector's ISA (the micro-kernels' epilogues): see Lanes.
template <typename F, typename I, bool Fma>
[[gnu::always_inline]] inline Lanes<F> gelu_approx(Lanes<F> x) {
  return {gelu_approx<F, I, Fma>(x.v)};
}
#pragma GCC diagnostic pop

}  // namespace detrq::runtime::kernels::detail
