// Test helper: one narrowed CpuTarget per ISA variant of a kernel, so that a test runs every variant this
// CPU can (an AVX-512 machine also runs the AVX2 and portable code) and skips, saying which features are
// missing, the ones it cannot.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "detrq/runtime/cpu_target.h"

namespace detrq::testing {

struct IsaPath {
  std::string name;           // what the kernel reports running: "avx512", "avx2", "portable", ...
  runtime::CpuTarget target;  // exactly the features that path needs: a target narrowed to it
};

inline void PrintTo(const IsaPath& path, std::ostream* os) { *os << path.name; }

using F = runtime::CpuFeature;
inline IsaPath avx512_path() { return {"avx512", runtime::CpuTarget{F::kAvx2, F::kFma, F::kAvx512f}}; }
inline IsaPath avx2_path() { return {"avx2", runtime::CpuTarget{F::kAvx2, F::kFma}}; }
inline IsaPath portable_path() { return {"portable", runtime::CpuTarget{}}; }

// Empty when this CPU runs `path`, else why not (for GTEST_SKIP).
inline std::string why_host_cannot_run(const IsaPath& path) {
  const runtime::CpuTarget lacking = path.target.lacking_from(runtime::CpuTarget::host());
  if (lacking.empty()) return {};
  return "this CPU lacks " + lacking.to_string() + ", which the " + path.name + " path needs";
}

}  // namespace detrq::testing

// Skips the test visibly where the host cannot run `path`.
#define DETRQ_SKIP_UNLESS_HOST_RUNS(path)                                                   \
  do {                                                                                      \
    const std::string detrq_why = ::detrq::testing::why_host_cannot_run(path);              \
    if (!detrq_why.empty()) GTEST_SKIP() << detrq_why;                                      \
  } while (false)
