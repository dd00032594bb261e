// `detrq detect`: RF-DETR detections for images (files or folders) as JSON on stdout, and with --output-dir a
// PNG per image; a bad image is named on stderr and skipped, and the command then exits 1.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/pipeline/detector.h"
#include "detrq/vision/calibration_tensors.h"
#include "detrq/vision/draw.h"
#include "detrq/vision/image_decoder.h"

namespace detrq::cli {

namespace {

struct DetectArgs {
  std::string engine;
  std::string onnx;
  std::vector<std::string> images;
  float threshold = 0.5F;
  std::string out;
  int threads = 0;
  std::string cpu_features;
};

}  // namespace

void add_detect_command(CLI::App& app, CommandAction& action, const GlobalOptions& /*global*/) {
  auto args = std::make_shared<DetectArgs>();
  CLI::App* cmd = app.add_subcommand("detect", "Detect objects in images or folders of images (JSON on stdout; PNGs with --output-dir)");
  auto* engine = cmd->add_option("--engine", args->engine, "Engine file from `detrq build-engine`");
  auto* onnx = cmd->add_option("--onnx", args->onnx, "ONNX model (FP32 or Q/DQ)");
  engine->excludes(onnx);
  cmd->add_option("images", args->images, "Images (JPEG or PNG) or folders of them")->required();
  cmd->add_option("--threshold", args->threshold, "Minimum score")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--output-dir", args->out, "Folder for <image>.png with the boxes drawn (<image>_2.png, ... for a repeated name)");
  add_hidden_alias(cmd, "--out", args->out);
  cmd->add_option("--threads", args->threads, "Threads (0: one per core)")->check(count_validator());
  cmd->add_option("--cpu-features", args->cpu_features, "CPU features the kernels may use, narrowing this CPU's (e.g. avx2,fma; default: all it has; a feature it lacks is refused)");
  cmd->callback([&action, args] {
    action = [args] {
      if (args->engine.empty() == args->onnx.empty()) {
        throw Error(ErrorKind::kUsage, "detect", "give exactly one of --engine and --onnx");
      }
      check_model_option("--engine", args->engine);
      check_model_option("--onnx", args->onnx);
      pipeline::DetectorOptions options;
      options.threads = args->threads;
      options.target = runtime::narrowed_host_target(args->cpu_features);
      auto detector = pipeline::Detector::open(args->engine.empty() ? args->onnx : args->engine, options);
      vision::PostprocessOptions post;
      post.score_threshold = args->threshold;
      if (!args->out.empty()) std::filesystem::create_directories(args->out);
      // A folder stands for its images (.jpg, .jpeg, .png, in file-name order), as for `tensors`; an image
      // or a folder that fails is named on stderr and skipped, the others' results are kept (exit 1 at the end).
      std::vector<std::string> paths;
      int failed = 0;
      for (const auto& given : args->images) {
        std::error_code ec;
        if (!std::filesystem::is_directory(given, ec)) {
          paths.push_back(given);
          continue;
        }
        const auto listed = vision::list_calibration_images(given);
        if (listed.empty()) {
          std::fprintf(stderr, "detrq: error: %s: no image in this folder (detrq reads .jpg, .jpeg and .png files)\n",
                       given.c_str());
          ++failed;
        }
        for (const auto& p : listed) paths.push_back(p.string());
      }
      nlohmann::json results = nlohmann::json::array();
      std::set<std::string> drawn_names;
      for (const auto& path : paths) {
        vision::RgbImage image;
        try {
          image = vision::decode_image(path);
        } catch (const Error& e) {
          std::fprintf(stderr, "detrq: error: %s\n", e.what());
          ++failed;
          continue;
        }
        const auto detections = detector.detect(image, post);
        nlohmann::json dets = nlohmann::json::array();
        for (const auto& d : detections) {
          dets.push_back({{"label", d.label}, {"category_id", d.category_id}, {"score", d.score},
                          {"box", {d.x0, d.y0, d.x1, d.y1}}});
        }
        nlohmann::json entry = {{"image", path}, {"width", image.width}, {"height", image.height}, {"detections", dets}};
        if (!args->out.empty()) {
          // Two inputs with the same name (photo.jpg and photo.png, or one name in two folders) get
          // <name>.png and <name>_2.png, ...: a drawing never replaces another of this run.
          const std::string stem = std::filesystem::path(path).stem().string();
          std::string name = stem + ".png";
          for (int n = 2; !drawn_names.insert(name).second; ++n) name = stem + "_" + std::to_string(n) + ".png";
          const auto png = std::filesystem::path(args->out) / name;
          auto pixels = core::Tensor::view(core::DType::kUInt8, {image.height, image.width, 3},
                                           const_cast<uint8_t*>(image.pixels.data()));
          vision::draw_detections_png(pixels, detections, png);
          entry["drawn"] = png.string();
        }
        results.push_back(std::move(entry));
      }
      std::printf("%s\n", results.dump(2).c_str());
      if (failed > 0) {
        std::fprintf(stderr, "detrq: error: %d of the inputs failed (named above); %zu images' detections are printed\n",
                     failed, results.size());
        return static_cast<int>(ErrorKind::kFailure);
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
