// Throughput of decode + letterbox + normalize (512x512, CHW float32): detrq against OpenCV (imread,
// resize, copy into a 114 canvas, blobFromImage, per-channel mean/std) on the same files, single-threaded
// and with one worker per core. Prints one JSON object per line; bench/vision_preprocess.py adds Pillow.
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "detrq/vision/calibration_tensors.h"
#include "detrq/vision/image_decoder.h"
#include "detrq/vision/letterbox_transform.h"

namespace fs = std::filesystem;
using namespace detrq;

namespace {

constexpr int kSize = 512;
volatile float g_sink = 0;  // keeps the results observable so that nothing is optimized away

float detrq_preprocess(const fs::path& path) {
  static thread_local const vision::LetterboxTransform transform(kSize);
  const auto result = transform.apply(vision::decode_image(path));
  return result.chw.data<float>()[kSize * kSize + kSize * 256 + 256];
}

float opencv_preprocess(const fs::path& path) {
  const cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
  const float scale = std::min(float(kSize) / float(bgr.cols), float(kSize) / float(bgr.rows));
  const int w = std::max(1, int(float(bgr.cols) * scale)), h = std::max(1, int(float(bgr.rows) * scale));
  cv::Mat resized;
  cv::resize(bgr, resized, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  cv::Mat canvas(kSize, kSize, CV_8UC3, cv::Scalar(114, 114, 114));
  resized.copyTo(canvas(cv::Rect((kSize - w) / 2, (kSize - h) / 2, w, h)));
  cv::Mat blob = cv::dnn::blobFromImage(canvas, 1.0 / 255.0, cv::Size(), cv::Scalar(), /*swapRB=*/true,
                                        /*crop=*/false, CV_32F);
  for (int c = 0; c < 3; ++c) {
    cv::Mat plane(kSize, kSize, CV_32F, blob.ptr<float>(0, c));
    const double s = vision::LetterboxTransform::kStd[c], m = vision::LetterboxTransform::kMean[c];
    plane.convertTo(plane, -1, 1.0 / s, -m / s);
  }
  return blob.ptr<float>(0, 1)[kSize * 256 + 256];
}

// Best images/s over `rounds` rounds, each processing every image `repeat` times on `threads` workers.
double measure(const std::vector<fs::path>& images, int repeat, int rounds, int threads,
               const std::function<float(const fs::path&)>& fn) {
  const std::size_t jobs = images.size() * repeat;
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      float acc = 0;
      for (std::size_t j; (j = next.fetch_add(1)) < jobs;) acc += fn(images[j % images.size()]);
      g_sink = g_sink + acc;
    };
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(jobs) / s);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IMAGE_DIR [REPEAT] [ROUNDS]\n", argv[0]);
    return 2;
  }
  const int repeat = argc > 2 ? std::atoi(argv[2]) : 5;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  const auto images = vision::list_calibration_images(argv[1]);
  if (images.empty()) {
    std::fprintf(stderr, "%s: no .jpg/.png images\n", argv[1]);
    return 1;
  }
  cv::setNumThreads(1);  // parallelism across images only, the same for both
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int threads : {1, cores}) {
    // Rounds alternate between the two so that both see the same machine load; the best round counts.
    double d = 0, o = 0;
    for (int r = 0; r < rounds; ++r) {
      d = std::max(d, measure(images, repeat, 1, threads, detrq_preprocess));
      o = std::max(o, measure(images, repeat, 1, threads, opencv_preprocess));
    }
    std::printf("{\"method\": \"detrq\", \"threads\": %d, \"images_per_s\": %.2f}\n", threads, d);
    std::printf("{\"method\": \"opencv %s\", \"threads\": %d, \"images_per_s\": %.2f}\n", CV_VERSION, threads, o);
  }
  std::fprintf(stderr, "%zu images, %d repeats, best of %d rounds\n", images.size(), repeat, rounds);
  return 0;
}
