// detrq tensors: letterbox a folder of images into calibration tensors + manifest.json.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/vision/calibration_tensors.h"

namespace detrq::cli {

void add_tensors_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto options = std::make_shared<vision::CalibrationTensorsOptions>();
  auto* cmd = app.add_subcommand("tensors", "Preprocess images into calibration tensors (1x3x512x512 float32)");
  cmd->add_option("--input-dir", options->input_dir, "Folder of .jpg/.jpeg/.png images")->required();
  cmd->add_option("--output-dir", options->output_dir, "Where calib_NNNN.bin and manifest.json go")->required();
  cmd->add_option("--count", options->count, "Tensors to write, in file-name order (0: all)")
      ->default_val(0)
      ->check(count_validator());
  cmd->add_option("--threads", options->threads, "Worker threads (0: one per core)")->default_val(0)->check(count_validator());
  cmd->callback([&action, &global, options] {
    action = [&global, options] {
      const auto s = vision::write_calibration_tensors(*options);
      if (global.json) {
        nlohmann::json j{{"output_dir", options->output_dir.string()}, {"written", s.written},
                         {"reused", s.reused},   {"failed", s.failed},
                         {"failures", s.failures}, {"total", s.total()}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("%d tensors in %s (%d written, %d reused), %d images failed\n", s.total(),
                    options->output_dir.c_str(), s.written, s.reused, s.failed);
      }
      if (s.total() == 0) {  // the images' folder is what is wrong, not the output folder
        std::fprintf(stderr, "detrq: error: %s: no usable image (detrq reads .jpg, .jpeg and .png files)\n",
                     options->input_dir.c_str());
        return static_cast<int>(ErrorKind::kFailure);
      }
      if (!s.complete()) {  // again the images' folder holds too few: the tensors made are in the output folder
        std::fprintf(stderr, "detrq: error: %s: %d usable images, fewer than --count %d (their tensors are in %s)\n",
                     options->input_dir.c_str(), s.total(), options->count, options->output_dir.c_str());
        return static_cast<int>(ErrorKind::kFailure);
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
