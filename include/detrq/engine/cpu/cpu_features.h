// x86 CPU features as lists of names (runtime::CpuTarget's, which detects them and which the kernels ask):
// an engine file records those its packed states need and refuses to load where any is missing.
#pragma once

#include <string>
#include <vector>

namespace detrq::engine::cpu {

// Feature names detrq knows, in GCC's spelling: sse4.2, avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl,
// avx512vnni, avxvnni, avx512bf16, amx-tile, amx-int8, amx-bf16.
const std::vector<std::string>& known_cpu_features();

// The known features this CPU has (CpuTarget::host(); empty on non-x86 builds).
std::vector<std::string> host_cpu_features();

// The features of `required` that `available` lacks, in `required`'s order.
std::vector<std::string> missing_cpu_features(const std::vector<std::string>& required,
                                              const std::vector<std::string>& available);

// The names in a known-order, duplicate-free list. Parses "avx2,fma" (commas or spaces); "host" means host_cpu_features(), "none" or "" the empty list.
// Throws kUsage naming an unknown feature and listing the known ones.
std::vector<std::string> parse_cpu_features(const std::string& text);

}  // namespace detrq::engine::cpu
