// detrq fetch-calibration: download COCO val2017 calibration images (validated JPEGs) into a folder.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/vision/coco_fetcher.h"

namespace detrq::cli {

void add_fetch_calibration_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto options = std::make_shared<vision::FetchOptions>();
  auto ids_file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("fetch-calibration", "Download COCO val2017 calibration images");
  cmd->add_option("--count", options->count, "Images wanted in the output folder (0: one per id of the list)")->default_val(100)
      ->check(count_validator());
  cmd->add_option("--ids", *ids_file, "File of COCO image ids (default: the list shipped with detrq)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--output-dir", options->output_dir, "Where the images go")->default_val("calibration_images");
  cmd->add_option("--base-url", options->base_url, "Server folder holding %012d.jpg")
      ->default_val(vision::kCocoVal2017BaseUrl);
  cmd->add_option("--concurrency", options->concurrency, "Simultaneous downloads")->default_val(10)
      ->check(CLI::Range(1, 64));
  cmd->add_option("--timeout", options->timeout_s, "Seconds allowed per request")->default_val(60)
      ->check(CLI::PositiveNumber);
  cmd->add_option("--retries", options->max_attempts, "Attempts per image on connection errors, timeouts, 5xx")
      ->default_val(4)->check(CLI::Range(1, 20));
  cmd->callback([&action, &global, options, ids_file] {
    action = [&global, options, ids_file] {
      if (!ids_file->empty()) options->ids = vision::read_id_list(*ids_file);
      const auto s = vision::fetch_calibration_images(*options);
      if (global.json) {
        nlohmann::json j{{"output_dir", options->output_dir.string()}, {"downloaded", s.downloaded},
                         {"skipped", s.skipped}, {"failed", s.failed}, {"failures", s.failures},
                         {"present", s.present()}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("%d images in %s: %d downloaded, %d skipped (already present), %d failed\n", s.present(),
                    options->output_dir.c_str(), s.downloaded, s.skipped, s.failed);
      }
      if (!s.complete()) {
        std::fprintf(stderr, "detrq: error: %s: only %d of %d images (%s)\n", options->output_dir.c_str(),
                     s.present(), s.requested,
                     s.network_trouble ? "network trouble: run again later, present images are kept"
                                       : "the id list ran out: pass a longer --ids list");
        return static_cast<int>(s.network_trouble ? ErrorKind::kNetwork : ErrorKind::kFailure);
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
