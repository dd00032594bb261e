// COCO calibration image fetcher over libcurl's multi interface: up to `concurrency` transfers at once,
// each body kept in memory, validated as a complete JPEG and only then written (atomically) to disk.
// 404s and invalid bodies move on to the next id; connection errors, timeouts, 5xx, 408 and 429 retry
// with backoff.
#include "detrq/vision/coco_fetcher.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"
#include "detrq/vision/image_decoder.h"

namespace detrq::vision {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Transfer {
  CURL* easy = nullptr;
  int64_t id = 0;
  int attempt = 0;  // 0 for the first try
  std::string body;
  std::size_t max_body = 0;
  bool too_large = false;
  char error[CURL_ERROR_SIZE] = {};
};

struct Retry {
  int64_t id;
  int attempt;
  Clock::time_point ready;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->body.size() + size * n > t->max_body) {
    t->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t->body.append(data, size * n);
  return size * n;
}

void ensure_curl_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw Error(ErrorKind::kNetwork, "libcurl", "curl_global_init failed", "check the libcurl installation");
    }
  });
}

// Leftovers of an interrupted run (AtomicFile's "<name>.tmp.<pid>...") are removed so that the folder
// only ever holds validated images.
void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".jpg.tmp.") != std::string::npos) fs::remove(entry.path(), ec);
  }
}

}  // namespace

std::string coco_file_name(int64_t id) { return fmt::format("{:012d}.jpg", id); }

std::vector<int64_t> read_id_list(const fs::path& path) {
  const std::string text = core::read_file(path);
  std::vector<int64_t> ids;
  std::istringstream lines(text);
  std::string line;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      std::size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size() || v < 0 || v > 999999999999LL) {
        throw_invalid(fmt::format("{}:{}", path.string(), line_no), "'" + word + "' is not a COCO image id",
                      "ids are non-negative integers, separated by white space; '#' starts a comment");
      }
      ids.push_back(v);
    }
  }
  if (ids.empty()) throw_invalid(path.string(), "no ids in the list", "one id per line, e.g. 139");
  return ids;
}

FetchSummary fetch_calibration_images(const FetchOptions& given) {
  if (given.count < 0) throw_invalid("--count", "must be 0 (all) or positive");
  FetchOptions options = given;
  if (options.count == 0) {  // 0: every id of the list, as --count 0 means all in `tensors` and `calibrate`
    const std::vector<int64_t>& list = options.ids.empty() ? default_calibration_ids() : options.ids;
    options.count = static_cast<int>(std::set<int64_t>(list.begin(), list.end()).size());
  }
  if (options.concurrency < 1) throw_invalid("--concurrency", "must be at least 1");
  if (options.max_attempts < 1) throw_invalid("--retries", "at least one attempt is needed");
  const std::vector<int64_t>& ids = options.ids.empty() ? default_calibration_ids() : options.ids;
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) throw_io(options.output_dir.string(), "cannot create folder: " + ec.message());
  remove_stale_temporaries(options.output_dir);
  ensure_curl_initialized();

  std::string base = options.base_url;
  if (base.empty() || base.back() != '/') base += '/';
  FetchSummary summary;
  summary.requested = options.count;

  CURLM* multi = curl_multi_init();
  if (multi == nullptr) throw Error(ErrorKind::kNetwork, "libcurl", "curl_multi_init failed");
  std::vector<std::unique_ptr<Transfer>> active;
  struct Cleanup {
    CURLM* multi;
    std::vector<std::unique_ptr<Transfer>>* active;
    ~Cleanup() {
      for (auto& t : *active) {
        curl_multi_remove_handle(multi, t->easy);
        curl_easy_cleanup(t->easy);
      }
      curl_multi_cleanup(multi);
    }
  } cleanup{multi, &active};

  // Images already present count first, so that a complete folder costs no request at all.
  std::set<int64_t> present;
  for (const int64_t id : ids) {
    std::error_code exists_ec;
    if (summary.skipped < options.count && fs::exists(options.output_dir / coco_file_name(id), exists_ec)) {
      if (present.insert(id).second) ++summary.skipped;
    }
  }

  std::set<int64_t> started;
  std::deque<Retry> retries;
  std::size_t next_id = 0;
  core::Progress progress("fetch", options.count, "img");
  progress.advance(summary.skipped);

  auto fail = [&](int64_t id, const std::string& why) {
    summary.failures.push_back(coco_file_name(id) + ": " + why);
    ++summary.failed;
    core::log_warn("{}{}: {}", base, coco_file_name(id), why);
  };

  auto start = [&](int64_t id, int attempt) {
    auto t = std::make_unique<Transfer>();
    t->id = id;
    t->attempt = attempt;
    t->max_body = options.max_body_bytes;
    t->easy = curl_easy_init();
    if (t->easy == nullptr) throw Error(ErrorKind::kNetwork, "libcurl", "curl_easy_init failed");
    const std::string url = base + coco_file_name(id);
    curl_easy_setopt(t->easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(t->easy, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "detrq/" DETRQ_VERSION);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout_s * 1000));
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(options.timeout_s, 30.0) * 1000));
    curl_multi_add_handle(multi, t->easy);
    active.push_back(std::move(t));
  };

  // Whether more work may start: images present plus those on their way fall short of the count.
  auto wanted = [&] {
    return static_cast<std::size_t>(summary.present()) + active.size() + retries.size() <
           static_cast<std::size_t>(options.count);
  };

  while (true) {
    // Start transfers: due retries first, then fresh ids (already present ones are skipped unrequested).
    const auto now = Clock::now();
    while (static_cast<int>(active.size()) < options.concurrency && !retries.empty() && retries.front().ready <= now) {
      const Retry r = retries.front();
      retries.pop_front();
      start(r.id, r.attempt);
    }
    while (static_cast<int>(active.size()) < options.concurrency && wanted() && next_id < ids.size()) {
      const int64_t id = ids[next_id++];
      if (!present.contains(id) && started.insert(id).second) start(id, 0);  // a repeated id is fetched once
    }
    if (active.empty() && retries.empty()) break;

    int running = 0;
    curl_multi_perform(multi, &running);
    int wait_ms = 100;
    if (!retries.empty()) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(retries.front().ready - Clock::now());
      wait_ms = static_cast<int>(std::clamp<int64_t>(until.count(), 0, 100));
    }
    curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
    curl_multi_perform(multi, &running);

    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = std::find_if(active.begin(), active.end(), [&](const auto& t) { return t->easy == msg->easy_handle; });
      DETRQ_ASSERT(it != active.end(), "finished transfer not tracked");
      std::unique_ptr<Transfer> t = std::move(*it);
      active.erase(it);
      const CURLcode result = msg->data.result;
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      curl_multi_remove_handle(multi, t->easy);
      curl_easy_cleanup(t->easy);
      t->easy = nullptr;

      std::string transient;  // non-empty: worth another attempt
      if (t->too_large) {
        fail(t->id, fmt::format("answer larger than {} bytes", options.max_body_bytes));
      } else if (result != CURLE_OK) {
        transient = fmt::format("{} ({})", curl_easy_strerror(result), t->error);
      } else if (status >= 500 || status == 408 || status == 429) {  // server trouble, timeouts, throttling
        transient = fmt::format("HTTP {}", status);
      } else if (status != 200) {
        fail(t->id, fmt::format("HTTP {}", status));  // 404 and friends: the next id is taken instead
      } else if (!is_complete_jpeg(std::span(reinterpret_cast<const uint8_t*>(t->body.data()), t->body.size()))) {
        fail(t->id, fmt::format("the {}-byte answer is not a complete JPEG", t->body.size()));
      } else {
        core::AtomicFile file(options.output_dir / coco_file_name(t->id));
        file.write(t->body);
        file.commit();
        ++summary.downloaded;
        progress.advance();
        continue;
      }
      if (!transient.empty()) {
        summary.network_trouble = true;
        if (t->attempt + 1 < options.max_attempts) {
          const double delay = options.initial_backoff_s * std::pow(2.0, t->attempt);
          core::log_debug("{}: {}; retrying in {:.1f} s", coco_file_name(t->id), transient, delay);
          const auto ready = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(delay));
          retries.push_back({t->id, t->attempt + 1, ready});
          std::sort(retries.begin(), retries.end(), [](const Retry& a, const Retry& b) { return a.ready < b.ready; });
        } else {
          fail(t->id, fmt::format("{} after {} attempts", transient, options.max_attempts));
        }
      }
    }
  }
  progress.finish();
  return summary;
}

}  // namespace detrq::vision
