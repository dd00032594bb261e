// COCO fetcher: downloads calibration images (val2017 "%012d.jpg") concurrently with libcurl's multi
// interface, validating each as a complete JPEG before it is renamed into the output folder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace detrq::vision {

inline constexpr const char* kCocoVal2017BaseUrl = "http://images.cocodataset.org/val2017/";

// The id list that ships with detrq (data/coco_val2017_calibration_ids.txt, compiled in).
const std::vector<int64_t>& default_calibration_ids();

// Reads ids, one or more per line separated by white space; '#' starts a comment. Throws kInvalidInput.
std::vector<int64_t> read_id_list(const std::filesystem::path& path);

// "000000000139.jpg"
std::string coco_file_name(int64_t id);

struct FetchOptions {
  std::vector<int64_t> ids;              // empty: default_calibration_ids()
  int count = 100;                       // images wanted in output_dir; 0: every id of the list
  std::filesystem::path output_dir = "calibration_images";
  std::string base_url = kCocoVal2017BaseUrl;  // a trailing '/' is added when missing
  int concurrency = 10;
  int max_attempts = 4;                  // per id, for connection errors, timeouts and 5xx
  double timeout_s = 60.0;               // per request
  double initial_backoff_s = 0.5;        // doubled after each failed attempt
  std::size_t max_body_bytes = 64u << 20;  // larger answers are refused (a COCO image is ~160 KB)
};

struct FetchSummary {
  int downloaded = 0;  // fetched and validated in this run
  int skipped = 0;     // already present, not requested
  int failed = 0;      // 404, invalid bodies, and ids whose retries ran out
  int requested = 0;
  std::vector<std::string> failures;  // "<file name>: <reason>"
  bool network_trouble = false;       // some failure was a connection error, timeout or 5xx
  int present() const noexcept { return downloaded + skipped; }
  bool complete() const noexcept { return present() >= requested; }
};

// Fetches until options.count images (0: one per id of the list) are present or the ids run out. Never leaves a partial or invalid
// file in output_dir. Throws kIo when output_dir cannot be created; otherwise reports through the summary.
FetchSummary fetch_calibration_images(const FetchOptions& options);

}  // namespace detrq::vision
