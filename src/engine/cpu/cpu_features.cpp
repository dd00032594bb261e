// The engine's CPU feature lists (see cpu_features.h), as names of runtime::CpuTarget features: one
// detection and one spelling for the runtime, the engine file and the command line.
#include "detrq/engine/cpu/cpu_features.h"

#include <algorithm>

#include "detrq/runtime/cpu_target.h"

namespace detrq::engine::cpu {

const std::vector<std::string>& known_cpu_features() { return runtime::CpuTarget::known_names(); }

std::vector<std::string> host_cpu_features() { return runtime::CpuTarget::host().names(); }

std::vector<std::string> missing_cpu_features(const std::vector<std::string>& required,
                                              const std::vector<std::string>& available) {
  std::vector<std::string> out;
  for (const auto& f : required)
    if (std::find(available.begin(), available.end(), f) == available.end()) out.push_back(f);
  return out;
}

std::vector<std::string> parse_cpu_features(const std::string& text) { return runtime::CpuTarget::parse(text).names(); }

}  // namespace detrq::engine::cpu
