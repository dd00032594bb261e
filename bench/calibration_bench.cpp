// Calibration cost against its peer, plain FP32 inference with detrq's runtime: time of N images with
// the statistics observer (plus the thresholds) over N FP32 runs, and peak resident memory of each,
// every mode in a fresh child process so the peaks do not mix; then both modes image by image in one more
// child, the time ratio that a changing machine load does not skew.
//   calibration_bench [MODEL] [IMAGES=100] [THREADS=0] [all]   (MODEL defaults to ../shared's small RF-DETR;
//   "all": observe every float tensor, as --all-tensors does)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "detrq/core/tensor.h"
#include "detrq/onnx/model.h"
#include "detrq/quant/calibration_table.h"
#include "detrq/quant/qdq_insertion.h"
#include "detrq/quant/statistics_observer.h"
#include "detrq/runtime/session.h"

namespace {

struct Measure {
  double seconds = 0;      // the N runs
  double extra_seconds = 0;  // thresholds, after the runs
  double observer_seconds = 0;  // inside the observer during the runs (less sensitive to machine load)
  long peak_kib = 0;
  long statistics_kib = 0;
};

long peak_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

bool all_tensors = false;

// Times the statistics observer's own work inside the calibration runs.
class TimedObserver : public detrq::runtime::Observer {
 public:
  explicit TimedObserver(detrq::quant::StatisticsObserver& inner) : inner_(inner) {}
  void on_tensor(const std::string& name, const detrq::core::Tensor& value) override {
    const auto t = std::chrono::steady_clock::now();
    inner_.on_tensor(name, value);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  double seconds = 0;

 private:
  detrq::quant::StatisticsObserver& inner_;
};

Measure run_mode(const std::string& model_path, int images, int threads, bool calibrate) {
  using Clock = std::chrono::steady_clock;
  detrq::runtime::SessionOptions options;
  options.threads = threads;
  // As detrq calibrate does: operator fusion must not compute away a tensor the observer watches.
  const auto watched = detrq::quant::tensors_to_calibrate(detrq::onnx::load_model(model_path), {});
  if (calibrate && all_tensors) options.fuse_operators = false;
  if (calibrate && !all_tensors) options.keep_tensors = watched;
  auto session = detrq::runtime::Session::load(model_path, options);
  const auto& input = session.inputs().at(0);
  // Inputs shaped like letterboxed images: normalized values with smooth structure.
  std::vector<detrq::core::Tensor> inputs;
  std::mt19937 rng(0);
  std::normal_distribution<float> d(0.0F, 1.0F);
  for (int k = 0; k < 4; ++k) {
    auto t = detrq::core::Tensor::empty(detrq::core::DType::kFloat32, input.shape);
    for (float& v : t.span<float>()) v = d(rng);
    inputs.push_back(t);
  }
  detrq::quant::StatisticsObserver observer(threads > 0 ? threads : detrq::core::ThreadPool::hardware_threads());
  // What detrq calibrate observes by default: the tensors of the layers the DETR policy quantizes.
  if (!all_tensors) observer.watch_only(watched);
  session.run({{input.name, inputs[0]}});  // warm-up, both modes
  Measure m;
  TimedObserver timed(observer);
  const auto start = Clock::now();
  for (int i = 0; i < images; ++i) {
    const auto& x = inputs[static_cast<std::size_t>(i) % inputs.size()];
    if (calibrate) {
      observer.observe(input.name, x.span<float>());
      session.run({{input.name, x}}, &timed);
    } else {
      session.run({{input.name, x}});
    }
  }
  m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  m.observer_seconds = timed.seconds;
  if (calibrate) {
    const auto t = Clock::now();
    auto table = detrq::quant::build_calibration_table(observer.statistics(), detrq::quant::CalibrationMethod::kEntropy);
    m.extra_seconds = std::chrono::duration<double>(Clock::now() - t).count();
    m.statistics_kib = static_cast<long>(observer.memory_bytes() / 1024);
    if (table.tensors.empty()) std::abort();
  }
  m.peak_kib = peak_rss_kib();
  return m;
}

// Both modes in one process, image by image in turn (FP32 run, then calibration run), so that a load
// that changes during the benchmark falls on both alike: seconds = the FP32 runs, extra_seconds = the
// calibration runs plus the thresholds. (Peak memory here is both sessions together: not reported.)
Measure run_interleaved(const std::string& model_path, int images, int threads) {
  using Clock = std::chrono::steady_clock;
  const auto watched = detrq::quant::tensors_to_calibrate(detrq::onnx::load_model(model_path), {});
  detrq::runtime::SessionOptions plain_options;
  plain_options.threads = threads;
  detrq::runtime::SessionOptions calib_options = plain_options;
  if (all_tensors) calib_options.fuse_operators = false;
  if (!all_tensors) calib_options.keep_tensors = watched;
  auto plain = detrq::runtime::Session::load(model_path, plain_options);
  auto calib = detrq::runtime::Session::load(model_path, calib_options);
  const auto& input = plain.inputs().at(0);
  std::vector<detrq::core::Tensor> inputs;
  std::mt19937 rng(0);
  std::normal_distribution<float> d(0.0F, 1.0F);
  for (int k = 0; k < 4; ++k) {
    auto t = detrq::core::Tensor::empty(detrq::core::DType::kFloat32, input.shape);
    for (float& v : t.span<float>()) v = d(rng);
    inputs.push_back(t);
  }
  detrq::quant::StatisticsObserver observer(threads > 0 ? threads : detrq::core::ThreadPool::hardware_threads());
  if (!all_tensors) observer.watch_only(watched);
  plain.run({{input.name, inputs[0]}});
  calib.run({{input.name, inputs[0]}});
  Measure m;
  for (int i = 0; i < images; ++i) {
    const auto& x = inputs[static_cast<std::size_t>(i) % inputs.size()];
    auto t = Clock::now();
    plain.run({{input.name, x}});
    m.seconds += std::chrono::duration<double>(Clock::now() - t).count();
    t = Clock::now();
    observer.observe(input.name, x.span<float>());
    calib.run({{input.name, x}}, &observer);
    m.extra_seconds += std::chrono::duration<double>(Clock::now() - t).count();
  }
  const auto t = Clock::now();
  auto table = detrq::quant::build_calibration_table(observer.statistics(), detrq::quant::CalibrationMethod::kEntropy);
  m.extra_seconds += std::chrono::duration<double>(Clock::now() - t).count();
  if (table.tensors.empty()) std::abort();
  return m;
}

// Runs one mode in a child process and reads its Measure back through a pipe.
Measure in_child(const std::string& model, int images, int threads, bool calibrate, bool interleaved = false) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Measure m = interleaved ? run_interleaved(model, images, threads) : run_mode(model, images, threads, calibrate);
    if (write(fds[1], &m, sizeof m) != static_cast<ssize_t>(sizeof m)) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  Measure m;
  if (read(fds[0], &m, sizeof m) != static_cast<ssize_t>(sizeof m)) {
    std::fprintf(stderr, "child failed\n");
    std::exit(1);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = argc > 1 ? argv[1] : std::string(DETRQ_SHARED_DIR) + "/models/rfdetr_small_random.onnx";
  const int images = argc > 2 ? std::atoi(argv[2]) : 100;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 0;
  all_tensors = argc > 4 && std::string(argv[4]) == "all";
  std::fprintf(stderr, "model %s, %d images, threads %d\n", model.c_str(), images, threads);
  Measure fp32 = in_child(model, images, threads, false);
  Measure cal = in_child(model, images, threads, true);
  std::printf("FP32 runs:        %8.2f s  (%.1f ms/image), peak RSS %ld MiB\n", fp32.seconds, 1000 * fp32.seconds / images,
              fp32.peak_kib / 1024);
  std::printf("calibration runs: %8.2f s  (%.1f ms/image) + thresholds %.2f s, peak RSS %ld MiB (statistics %ld KiB)\n",
              cal.seconds, 1000 * cal.seconds / images, cal.extra_seconds, cal.peak_kib / 1024, cal.statistics_kib);
  std::printf("observer %.1f ms/image = %.1f%% of the calibration runs; (FP32 + observer + thresholds) / FP32 "
              "from the calibration process alone: %.3f\n",
              1000 * cal.observer_seconds / images, 100 * cal.observer_seconds / cal.seconds,
              cal.seconds / (cal.seconds - cal.observer_seconds) + cal.extra_seconds / (cal.seconds - cal.observer_seconds));
  std::printf("time ratio (calibration incl. thresholds / FP32): %.3f   peak memory ratio: %.3f\n",
              (cal.seconds + cal.extra_seconds) / fp32.seconds,
              static_cast<double>(cal.peak_kib) / static_cast<double>(fp32.peak_kib));
  const Measure both = in_child(model, images, threads, true, true);
  std::printf("interleaved in one process: FP32 %.1f ms/image, calibration %.1f ms/image incl. thresholds, "
              "time ratio %.3f\n", 1000 * both.seconds / images, 1000 * both.extra_seconds / images,
              both.extra_seconds / both.seconds);
  return 0;
}
