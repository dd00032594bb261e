// CPU feature detection (see cpu_features.h) through GCC's __builtin_cpu_supports, which reads CPUID
// and the OS's XSAVE state, so a feature the kernel does not enable is reported missing.
#include "detrq/engine/cpu/cpu_features.h"

#include <algorithm>
#include <sstream>

#include "detrq/core/error.h"

namespace detrq::engine::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)
bool supports(const std::string& name) {
  __builtin_cpu_init();
  // __builtin_cpu_supports needs a string literal, hence the table.
  if (name == "sse4.2") return __builtin_cpu_supports("sse4.2");
  if (name == "avx") return __builtin_cpu_supports("avx");
  if (name == "avx2") return __builtin_cpu_supports("avx2");
  if (name == "fma") return __builtin_cpu_supports("fma");
  if (name == "f16c") return __builtin_cpu_supports("f16c");
  if (name == "avx512f") return __builtin_cpu_supports("avx512f");
  if (name == "avx512bw") return __builtin_cpu_supports("avx512bw");
  if (name == "avx512vl") return __builtin_cpu_supports("avx512vl");
  if (name == "avx512vnni") return __builtin_cpu_supports("avx512vnni");
  if (name == "avxvnni") return __builtin_cpu_supports("avxvnni");
  if (name == "avx512bf16") return __builtin_cpu_supports("avx512bf16");
  return false;
}
#else
bool supports(const std::string&) { return false; }
#endif

}  // namespace

const std::vector<std::string>& known_cpu_features() {
  static const std::vector<std::string> k = {"sse4.2",   "avx",      "avx2",       "fma",     "f16c",      "avx512f",
                                             "avx512bw", "avx512vl", "avx512vnni", "avxvnni", "avx512bf16"};
  return k;
}

std::vector<std::string> host_cpu_features() {
  std::vector<std::string> out;
  for (const auto& f : known_cpu_features())
    if (supports(f)) out.push_back(f);
  return out;
}

std::vector<std::string> missing_cpu_features(const std::vector<std::string>& required,
                                              const std::vector<std::string>& available) {
  std::vector<std::string> out;
  for (const auto& f : required)
    if (std::find(available.begin(), available.end(), f) == available.end()) out.push_back(f);
  return out;
}

std::vector<std::string> parse_cpu_features(const std::string& text) {
  std::string t = text;
  std::replace(t.begin(), t.end(), ',', ' ');
  std::istringstream in(t);
  std::vector<std::string> out;
  std::string word;
  while (in >> word) {
    if (word == "host") {
      for (auto& f : host_cpu_features())
        if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
      continue;
    }
    if (word == "none") continue;
    const auto& known = known_cpu_features();
    if (std::find(known.begin(), known.end(), word) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error(ErrorKind::kUsage, "--cpu-features", "unknown CPU feature '" + word + "'", "known: " + list);
    }
    if (std::find(out.begin(), out.end(), word) == out.end()) out.push_back(word);
  }
  return out;
}

}  // namespace detrq::engine::cpu
