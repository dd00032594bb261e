// GEMM micro-benchmark on the MatMul shapes of rfdetr_small_random.onnx: detrq's fast path (auto and AVX-512)
// against OpenBLAS (cblas_sgemm) and oneDNN (dnnl_sgemm), all on 2 threads, in the same run.
// Run: build/release/bench/gemm_bench  (figures go to bench/RESULTS.md, "kernels-compute" section)
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "detrq/core/thread_pool.h"
#include "runtime/kernels/gemm/gemm.h"

namespace {

using detrq::runtime::kernels::MatrixView;
using detrq::runtime::kernels::PackedMatrixB;
using detrq::runtime::kernels::SgemmItem;

// 2 threads as in the comparison; DETRQ_BENCH_THREADS overrides (1 shows per-core efficiency).
const int kThreads = std::getenv("DETRQ_BENCH_THREADS") ? std::atoi(std::getenv("DETRQ_BENCH_THREADS")) : 2;

struct Shape {
  const char* what;
  int64_t batch, m, n, k;
  bool b_constant;  // weights (packed once at load) or activations (packed every run)
  bool bias_gelu = false;  // the MLP's bias + erf GELU applied by the GEMM epilogue (detrq only)
};

// The products that dominate the model: backbone projections and MLP (4 windows x 257 tokens = 1028
// rows), windowed and global attention, decoder FFN.
const Shape kShapes[] = {
    {"qkv_proj_1028x384x384", 1, 1028, 384, 384, true},
    {"mlp_up_1028x1536x384", 1, 1028, 1536, 384, true},
    {"mlp_up_bias_gelu_1028x1536x384", 1, 1028, 1536, 384, true, true},
    {"mlp_down_1028x384x1536", 1, 1028, 384, 1536, true},
    {"win_attn_qk_24x257x257x64", 24, 257, 257, 64, false},
    {"win_attn_av_24x257x64x257", 24, 257, 64, 257, false},
    {"glob_attn_qk_6x1028x1028x64", 6, 1028, 1028, 64, false},
    {"dec_ffn_300x2048x256", 1, 300, 2048, 256, true},
    {"projector_conv1x1_256x1024x1536", 1, 256, 1024, 1536, false},
    {"bottleneck_conv3x3_128x1024x1152", 1, 128, 1024, 1152, false},
};

struct Data {
  std::vector<float> a, b, c;
  explicit Data(const Shape& s)
      : a(static_cast<std::size_t>(s.batch * s.m * s.k)),
        b(static_cast<std::size_t>(s.batch * s.k * s.n)),
        c(static_cast<std::size_t>(s.batch * s.m * s.n)) {
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> d(-1, 1);
    for (float& v : a) v = d(gen);
    for (float& v : b) v = d(gen);
  }
};

void set_flops(benchmark::State& state, const Shape& s) {
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * static_cast<double>(s.batch * s.m * s.n * s.k),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

void bm_detrq(benchmark::State& state, Shape s, detrq::runtime::CpuTarget target) {
  Data d(s);
  detrq::core::ThreadPool pool(kThreads);
  std::vector<PackedMatrixB> packed(static_cast<std::size_t>(s.batch));
  std::vector<SgemmItem> items(static_cast<std::size_t>(s.batch));
  auto pack = [&] {
    pool.parallel_for(s.batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) {
        // Weights in the stored layout, activations in the per-run depth blocks, as the kernels pack them.
        packed[static_cast<std::size_t>(i)].pack(
            s.k, s.n, MatrixView<float>{d.b.data() + i * s.k * s.n, s.n, 1}, nullptr,
            s.b_constant ? detrq::runtime::kernels::kGemmKc : detrq::runtime::kernels::depth_block_per_run(s.k));
      }
    });
  };
  pack();
  const std::vector<float> bias(static_cast<std::size_t>(s.n), 0.25F);
  for (int64_t i = 0; i < s.batch; ++i) {
    items[static_cast<std::size_t>(i)] = SgemmItem{MatrixView<float>{d.a.data() + i * s.m * s.k, s.k, 1},
                                                   &packed[static_cast<std::size_t>(i)], d.c.data() + i * s.m * s.n};
    if (s.bias_gelu) {
      items[static_cast<std::size_t>(i)].epilogue.bias = bias.data();
      items[static_cast<std::size_t>(i)].epilogue.activation = detrq::runtime::kernels::GemmActivation::kGeluErf;
    }
  }
  for (auto _ : state) {
    if (!s.b_constant) pack();
    detrq::runtime::kernels::sgemm_packed(s.m, s.n, s.k, 1.0F, false, items, s.n, &pool, target);
    benchmark::DoNotOptimize(d.c.data());
  }
  state.SetLabel(detrq::runtime::kernels::sgemm_isa(target));
  set_flops(state, s);
}

// As in a model run, where each layer's weights come from memory (the small model's 110 MB of weights do
// not fit the caches): 24 copies of B (more than the L3 holds for the MLP shapes) used in turn.
void bm_detrq_cold_weights(benchmark::State& state, Shape s) {
  Data d(s);
  detrq::core::ThreadPool pool(kThreads);
  constexpr int kCopies = 24;
  std::vector<PackedMatrixB> packed(kCopies);
  for (PackedMatrixB& p : packed) p.pack(s.k, s.n, MatrixView<float>{d.b.data(), s.n, 1});
  int next = 0;
  for (auto _ : state) {
    const SgemmItem item{MatrixView<float>{d.a.data(), s.k, 1}, &packed[static_cast<std::size_t>(next)], d.c.data()};
    next = (next + 1) % kCopies;
    detrq::runtime::kernels::sgemm_packed(s.m, s.n, s.k, 1.0F, false, std::span<const SgemmItem>(&item, 1), s.n,
                                          &pool, detrq::runtime::CpuTarget::host());
    benchmark::DoNotOptimize(d.c.data());
  }
  state.SetLabel(detrq::runtime::kernels::sgemm_isa(detrq::runtime::CpuTarget::host()));
  set_flops(state, s);
}

void bm_openblas(benchmark::State& state, Shape s) {
  Data d(s);
  openblas_set_num_threads(kThreads);
  for (auto _ : state) {
    for (int64_t i = 0; i < s.batch; ++i) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(s.m), static_cast<int>(s.n),
                  static_cast<int>(s.k), 1.0F, d.a.data() + i * s.m * s.k, static_cast<int>(s.k),
                  d.b.data() + i * s.k * s.n, static_cast<int>(s.n), 0.0F, d.c.data() + i * s.m * s.n,
                  static_cast<int>(s.n));
    }
    benchmark::DoNotOptimize(d.c.data());
  }
  set_flops(state, s);
}

void bm_onednn(benchmark::State& state, Shape s) {
  Data d(s);
  omp_set_num_threads(kThreads);
  for (auto _ : state) {
    for (int64_t i = 0; i < s.batch; ++i) {
      dnnl_sgemm('N', 'N', s.m, s.n, s.k, 1.0F, d.a.data() + i * s.m * s.k, s.k, d.b.data() + i * s.k * s.n, s.n,
                 0.0F, d.c.data() + i * s.m * s.n, s.n);
    }
    benchmark::DoNotOptimize(d.c.data());
  }
  set_flops(state, s);
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& s : kShapes) {
    using detrq::runtime::CpuFeature;
    using detrq::runtime::CpuTarget;
    const CpuTarget host = CpuTarget::host();
    const CpuTarget avx2 = host.intersected(CpuTarget{CpuFeature::kAvx2, CpuFeature::kFma});
    if (s.bias_gelu) {  // the peers have no epilogue: compare with the plain mlp_up product
      benchmark::RegisterBenchmark((std::string(s.what) + "/detrq").c_str(), bm_detrq, s, host)
          ->UseRealTime()
          ->MinTime(0.5);
      continue;
    }
    benchmark::RegisterBenchmark((std::string(s.what) + "/detrq").c_str(), bm_detrq, s, host)
        ->UseRealTime()
        ->MinTime(0.5);
    // The AVX2 tile alone, by a narrowed target (the label says which micro-kernel ran).
    benchmark::RegisterBenchmark((std::string(s.what) + "/detrq_avx2").c_str(), bm_detrq, s, avx2)
        ->UseRealTime()
        ->MinTime(0.5);
    if (s.b_constant && s.batch == 1) {
      benchmark::RegisterBenchmark((std::string(s.what) + "/detrq_cold_weights").c_str(), bm_detrq_cold_weights, s)
          ->UseRealTime()
          ->MinTime(0.5);
    }
    benchmark::RegisterBenchmark((std::string(s.what) + "/openblas").c_str(), bm_openblas, s)->UseRealTime()->MinTime(0.5);
    benchmark::RegisterBenchmark((std::string(s.what) + "/onednn").c_str(), bm_onednn, s)->UseRealTime()->MinTime(0.5);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
