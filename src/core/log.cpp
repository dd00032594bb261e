// stderr logger and terminal progress bar.
#include "detrq/core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace detrq::core {
namespace {
LogLevel initial_level() {
  const char* env = std::getenv("DETRQ_LOG");
  if (!env) return LogLevel::kInfo;
  if (!std::strcmp(env, "error")) return LogLevel::kError;
  if (!std::strcmp(env, "warn")) return LogLevel::kWarn;
  if (!std::strcmp(env, "debug")) return LogLevel::kDebug;
  return LogLevel::kInfo;
}
std::atomic<int> g_level{static_cast<int>(initial_level())};
std::mutex g_stderr_mutex;
}  // namespace

void set_log_level(LogLevel level) noexcept { g_level = static_cast<int>(level); }
LogLevel log_level() noexcept { return static_cast<LogLevel>(g_level.load()); }

void log_message(LogLevel level, const std::string& message) {
  static const char* const kPrefix[] = {"error", "warning", "info", "debug"};
  std::lock_guard lock(g_stderr_mutex);
  std::fprintf(stderr, "detrq: %s: %s\n", kPrefix[static_cast<int>(level)], message.c_str());
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO) && log_level() >= LogLevel::kInfo),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n) {
  if (!enabled_) return;
  std::lock_guard lock(g_stderr_mutex);
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  std::lock_guard lock(g_stderr_mutex);
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  constexpr int kWidth = 30;
  const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 0.0;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r%s [%s] %lld/%lld %s %.1fs%s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), secs, final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace detrq::core
