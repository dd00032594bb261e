// A Session run allocates nothing on the heap: every allocation of the process (operator new, which
// std::vector, std::string, std::function and std::make_shared go through) is counted while
// Session::run writes into preallocated outputs, on the shipped model in FP32 and as an all-INT8 Q/DQ
// file calibrated on real images (QMatMulF with epilogues, Q/DQ attention, QConvF, QuantizeLinear).
// The first run counts too: kernel scratch is planned into the arena, not grown on demand.
#include <execinfo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <vector>

#include "detrq/onnx/model.h"
#include "detrq/quant/calibrate.h"
#include "detrq/runtime/session.h"
#include "detrq/vision/calibration_tensors.h"
#include "detrq/vision/image_decoder.h"
#include "detrq/vision/letterbox_transform.h"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
// The call stacks of the first few counted allocations, printed when the test fails.
constexpr int kKeptStacks = 256;
constexpr int kStackDepth = 24;
void* g_stacks[kKeptStacks][kStackDepth];
int g_stack_depth[kKeptStacks];
std::size_t g_sizes[kKeptStacks];

void note_allocation(std::size_t size) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  const long n = g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (n < kKeptStacks) {
    g_sizes[n] = size;
    g_stack_depth[n] = backtrace(g_stacks[n], kStackDepth);  // warmed up before counting: does not allocate
  }
}

void* allocate(std::size_t size, std::size_t alignment) {
  note_allocation(size);
  void* p = alignment > alignof(std::max_align_t) ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                                                  : std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t size) { return allocate(size, 0); }
void* operator new[](std::size_t size) { return allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size, 0);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace detrq {
namespace {

const std::filesystem::path kSource = DETRQ_TEST_SOURCE_DIR;

core::Tensor letterboxed(const std::filesystem::path& image) {
  vision::LetterboxTransform letterbox(512);
  return letterbox.apply(vision::decode_image(image)).chw;
}

// Allocations during `runs` runs of `session` on `input` into preallocated outputs.
long count_run_allocations(runtime::Session& session, const core::Tensor& input, int runs) {
  std::vector<core::Tensor> outputs = session.make_outputs();
  const std::vector<core::Tensor> inputs = {input};
  void* warm[2];
  backtrace(warm, 2);  // the first call loads the unwinder, which allocates
  g_allocations = 0;
  g_counting = true;
  for (int i = 0; i < runs; ++i) session.run(inputs, outputs);
  g_counting = false;
  const long n = g_allocations.load();
  // The first few call stacks (all that were kept with DETRQ_ALLOCATION_STACKS=all); addr2line -f -C
  // -e <this binary> <offset> names the frames.
  const long shown = std::getenv("DETRQ_ALLOCATION_STACKS") ? kKeptStacks : 4;
  for (long i = 0; i < std::min<long>(n, shown); ++i) {
    std::fprintf(stderr, "allocation %ld of %zu bytes during run:\n", i + 1, g_sizes[i]);
    backtrace_symbols_fd(g_stacks[i], g_stack_depth[i], STDERR_FILENO);
  }
  return n;
}

runtime::SessionOptions two_threads() {
  runtime::SessionOptions options;
  options.threads = 2;  // the pool's workers take part: their chunks count too
  return options;
}

TEST(RunAllocations, Fp32ShippedModelRunsWithoutHeapAllocations) {
  runtime::Session session(onnx::load_model(kSource / "models" / "rfdetr_shapes.onnx"), two_threads());
  const core::Tensor input = letterboxed(kSource / "data" / "shapes_val" / "shape_1_00000.jpg");
  EXPECT_EQ(count_run_allocations(session, input, 2), 0) << "see the call stacks above";
}

TEST(RunAllocations, Int8QdqShippedModelRunsWithoutHeapAllocations) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "run_allocation_qdq";
  std::filesystem::create_directories(dir);
  quant::CalibrateOptions options;
  options.onnx = kSource / "models" / "rfdetr_shapes.onnx";
  auto files = vision::list_calibration_images(kSource / "data" / "shapes_calib");
  files.resize(4);
  options.source.description = "data/shapes_calib";
  for (const auto& f : files) options.source.names.push_back(f.filename().string());
  options.source.load = [files](std::size_t i, const core::Shape&) { return letterboxed(files.at(i)); };
  options.eval_count = 0;
  options.ap_budget = 1e9;  // no search: the all-INT8 file as calibrated
  options.policy.detr_defaults = false;
  options.qdq_out = dir / "all_int8.qdq.onnx";
  options.threads = 2;
  const quant::CalibrateResult calibrated = quant::calibrate(options);
  ASSERT_GT(calibrated.macs.int8_share(), 0.99) << "the file must be all INT8 to cover the int8 kernels";

  runtime::Session session(onnx::load_model(options.qdq_out), two_threads());
  const core::Tensor input = letterboxed(kSource / "data" / "shapes_val" / "shape_1_00000.jpg");
  EXPECT_EQ(count_run_allocations(session, input, 2), 0) << "see the call stacks above";
}

}  // namespace
}  // namespace detrq
