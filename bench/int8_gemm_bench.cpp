// The int8 GEMM with a requantizing epilogue: detrq's (int8_gemm, best ISA of this CPU, s8 activations,
// per-column weight scales, s8 output) against oneDNN's matmul primitive (u8 x s8 -> s8, per-column output
// scales, weights reordered once to the layout it wants), 2 threads each, in interleaved rounds.
// Then detrq's own ISAs against each other on the same shapes.
// Run: OMP_WAIT_POLICY=PASSIVE build/release/bench/int8_gemm_bench [ROUNDS] (passive: oneDNN's idle OpenMP
// threads must not spin against detrq's pool on a 2-core machine)  (figures go to bench/RESULTS.md, "int8 engine")
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <vector>

#include "detrq/core/thread_pool.h"
#include "runtime/kernels/int8_gemm/int8_gemm.h"

namespace {

using namespace detrq::runtime::kernels;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct Shape {
  const char* what;
  int64_t m, n, k;
};
// rfdetr_shapes' backbone projections and MLP (4 windows x 257 tokens), and rfdetr_small's MLP.
const Shape kShapes[] = {{"shapes_qkv_1028x128x128", 1028, 128, 128},
                         {"shapes_mlp_up_1028x512x128", 1028, 512, 128},
                         {"shapes_mlp_down_1028x128x512", 1028, 128, 512},
                         {"small_mlp_up_1028x1536x384", 1028, 1536, 384}};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
double time_ms(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// detrq's own ISAs on one shape, interleaved round by round: GOP/s of each, and its time against the best
// ISA's (the VNNI paths against the AVX2 ones on the same CPU).
void compare_isas(const Shape& s, int rounds, detrq::core::ThreadPool& pool) {
  std::mt19937 gen(2);
  std::uniform_int_distribution<int> code(-128, 127);
  std::uniform_int_distribution<int> weight(-127, 127);
  std::vector<int8_t> a(static_cast<std::size_t>(s.m * s.k)), w(static_cast<std::size_t>(s.k * s.n));
  for (auto& v : a) v = static_cast<int8_t>(code(gen));
  for (auto& v : w) v = static_cast<int8_t>(weight(gen));
  std::vector<float> w_scale(static_cast<std::size_t>(s.n), 1e-3F);
  const detrq::runtime::CpuTarget host = detrq::runtime::CpuTarget::host();
  std::vector<Int8Isa> isas;
  for (Int8Isa isa : available_int8_isas(host)) {
    if (isa != Int8Isa::kReference) isas.push_back(isa);
  }
  std::vector<PackedInt8Weights> packed;
  std::vector<std::vector<uint8_t>> scratch;
  std::vector<std::vector<int8_t>> y(isas.size(), std::vector<int8_t>(static_cast<std::size_t>(s.m * s.n)));
  for (Int8Isa isa : isas) {
    packed.emplace_back(w.data(), s.k, s.n, isa, host);
    scratch.emplace_back(packed.back().scratch_bytes(s.m) + 64);
  }
  std::vector<std::vector<double>> t(isas.size());
  for (int r = 0; r <= rounds; ++r) {  // round 0 warms up
    for (std::size_t i = 0; i < isas.size(); ++i) {
      void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch[i].data()) + 63) / 64 * 64);
      Int8GemmOutput out;
      out.y = y[i].data();
      out.quantize = true;
      out.out_scale = 0.5F;
      // The 256-bit ISAs with the AVX2 epilogue (what a CPU without AVX-512 runs), VNNI-512 with AVX-512's.
      using F = detrq::runtime::CpuFeature;
      out.target = isas[i] == Int8Isa::kAvx512Vnni ? host : detrq::runtime::CpuTarget{F::kAvx2, F::kFma, F::kAvxVnni}.intersected(host);
      const double ms = time_ms([&] { int8_gemm(packed[i], a.data(), true, s.m, 0, 0.02F, w_scale.data(), true, out, aligned, pool); });
      if (r > 0) t[i].push_back(ms);
    }
  }
  const double ops = 2.0 * static_cast<double>(s.m * s.n * s.k);
  const std::size_t best = isas.size() - 1;  // best_int8_isa is the last available
  for (std::size_t i = 0; i < isas.size(); ++i) {
    std::vector<double> ratio;
    for (int r = 0; r < rounds; ++r) ratio.push_back(t[i][static_cast<std::size_t>(r)] / t[best][static_cast<std::size_t>(r)]);
    std::printf("| %s | %s | %.0f | %.2f |%s\n", s.what, int8_isa_name(isas[i]), ops / median(t[i]) / 1e6, median(ratio),
                y[i] != y[best] ? " (outputs differ!)" : "");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 30;
  constexpr int kThreads = 2;
  omp_set_num_threads(kThreads);
  detrq::core::ThreadPool pool(kThreads);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  std::printf("isa %s, %d threads, %d interleaved rounds, median\n", int8_isa_name(best_int8_isa(detrq::runtime::CpuTarget::host())), kThreads, rounds);
  std::printf("| shape (MxNxK) | detrq GOP/s | oneDNN GOP/s | detrq / oneDNN time |\n| --- | ---: | ---: | ---: |\n");
  for (const Shape& s : kShapes) {
    std::mt19937 gen(1);
    std::uniform_int_distribution<int> code(-128, 127);
    std::uniform_int_distribution<int> weight(-127, 127);  // symmetric, as calibrate (qdq_insertion) writes them
    std::vector<int8_t> a(static_cast<std::size_t>(s.m * s.k)), w(static_cast<std::size_t>(s.k * s.n));
    for (auto& v : a) v = static_cast<int8_t>(code(gen));
    for (auto& v : w) v = static_cast<int8_t>(weight(gen));
    std::vector<uint8_t> a_u8(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) a_u8[i] = static_cast<uint8_t>(a[i] + 128);
    std::vector<float> w_scale(static_cast<std::size_t>(s.n), 1e-3F), out_scale(w_scale.size(), 0.02F * 1e-3F / 0.5F);
    std::vector<int8_t> y_detrq(static_cast<std::size_t>(s.m * s.n)), y_dnnl(y_detrq.size());

    const PackedInt8Weights packed(w.data(), s.k, s.n, best_int8_isa(detrq::runtime::CpuTarget::host()),
                                   detrq::runtime::CpuTarget::host());
    std::vector<uint8_t> scratch(packed.scratch_bytes(s.m) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
    Int8GemmOutput out;
    out.y = y_detrq.data();
    out.quantize = true;
    out.out_scale = 0.5F;
    auto run_detrq = [&] {
      int8_gemm(packed, a.data(), true, s.m, 0, 0.02F, w_scale.data(), true, out, aligned, pool);
    };

    const dnnl::memory::desc a_md({s.m, s.k}, dt::u8, tag::ab), c_md({s.m, s.n}, dt::s8, tag::ab);
    const dnnl::memory::desc w_any({s.k, s.n}, dt::s8, tag::any), w_plain({s.k, s.n}, dt::s8, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, out_scale);
    attr.set_zero_points(DNNL_ARG_SRC, 0, {128});  // the s8 activations shifted to u8
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_any, c_md), attr, eng);
    dnnl::memory w_src(w_plain, eng, w.data()), w_mem(pd.weights_desc(), eng);
    dnnl::reorder(w_src, w_mem).execute(stream, w_src, w_mem);  // once, as packing at load
    dnnl::memory a_mem(a_md, eng, a_u8.data()), c_mem(c_md, eng, y_dnnl.data());
    const dnnl::matmul prim(pd);
    auto run_dnnl = [&] {
      prim.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, c_mem}});
      stream.wait();
    };

    run_detrq();
    run_dnnl();
    std::vector<double> td, to;
    for (int r = 0; r < rounds; ++r) {
      td.push_back(time_ms(run_detrq));
      to.push_back(time_ms(run_dnnl));
    }
    int differ = 0;  // same codes expected except for rounding at half-way points
    for (std::size_t i = 0; i < y_detrq.size(); ++i) differ += std::abs(y_detrq[i] - y_dnnl[i]) > 1;
    const double ops = 2.0 * static_cast<double>(s.m * s.n * s.k);
    std::vector<double> ratio;
    for (int r = 0; r < rounds; ++r) ratio.push_back(td[static_cast<std::size_t>(r)] / to[static_cast<std::size_t>(r)]);
    std::printf("| %s | %.0f | %.0f | %.2f |%s\n", s.what, ops / median(td) / 1e6, ops / median(to) / 1e6,
                median(ratio), differ ? " (outputs differ by more than one code!)" : "");
  }
  std::printf("\ndetrq's ISAs against each other (the epilogue on the ISA's own registers: AVX-512 for VNNI-512, AVX2 else)\n");
  std::printf("| shape (MxNxK) | ISA | GOP/s | time / best ISA's |\n| --- | --- | ---: | ---: |\n");
  for (const Shape& s : kShapes) compare_isas(s, rounds, pool);
  return 0;
}
