// CpuTarget: the x86 instruction-set features a Session's kernels may use. Detected once for the host,
// narrowed by `--cpu-features` (SessionOptions::target); every kernel and packing routine asks it, and
// nothing else, which code to run and which layout to pack for.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace detrq::runtime {

// Features detrq knows, in GCC's -m / __builtin_cpu_supports spelling (the names `--cpu-features` takes).
enum class CpuFeature : uint8_t {
  kSse42,       // sse4.2
  kAvx,         // avx
  kAvx2,        // avx2
  kFma,         // fma
  kF16c,        // f16c
  kAvx512f,     // avx512f
  kAvx512bw,    // avx512bw
  kAvx512vl,    // avx512vl
  kAvx512vnni,  // avx512vnni
  kAvxVnni,     // avxvnni
  kAvx512bf16,  // avx512bf16
  kAmxTile,     // amx-tile
  kAmxInt8,     // amx-int8
  kAmxBf16,     // amx-bf16
};
inline constexpr int kCpuFeatureCount = 14;

class CpuTarget {
 public:
  CpuTarget() = default;  // no feature: portable code only
  CpuTarget(std::initializer_list<CpuFeature> features);

  // This CPU's features, detected once: CPUID, the OS's enabled register state (XGETBV), and on Linux
  // the permission to use AMX tiles (arch_prctl ARCH_REQ_XCOMP_PERM; refused means no AMX).
  static const CpuTarget& host();
  // "avx2,fma" (commas or spaces; "host" adds the host's, "none" or "" nothing). Throws kUsage naming an
  // unknown feature and listing the known ones.
  static CpuTarget parse(std::string_view text);
  static const char* name(CpuFeature feature);
  static const std::vector<std::string>& known_names();  // every feature's name, in CpuFeature order

  bool has(CpuFeature feature) const { return (bits_ >> static_cast<int>(feature)) & 1U; }
  bool has_all(const CpuTarget& other) const { return (other.bits_ & ~bits_) == 0; }
  bool empty() const { return bits_ == 0; }
  CpuTarget with(CpuFeature feature) const;
  CpuTarget intersected(const CpuTarget& other) const;  // narrowing: features both have
  CpuTarget united(const CpuTarget& other) const;
  CpuTarget lacking_from(const CpuTarget& available) const;  // features of this one that `available` lacks
  std::vector<std::string> names() const;  // in CpuFeature order
  std::string to_string() const;           // "avx2, fma", or "none"
  bool operator==(const CpuTarget& other) const = default;

  // The feature sets the kernels' vector paths are built for.
  bool avx2_fma() const { return has(CpuFeature::kAvx2) && has(CpuFeature::kFma); }
  bool avx512f() const { return avx2_fma() && has(CpuFeature::kAvx512f); }  // AVX-512 paths mix in AVX2 code

 private:
  uint32_t bits_ = 0;
};

// The host's target narrowed to a `--cpu-features` value ("" or "host": the host's own). Throws kUsage for
// an unknown name and kUnsupported (exit 4) naming the features this CPU lacks.
CpuTarget narrowed_host_target(std::string_view features);

}  // namespace detrq::runtime
