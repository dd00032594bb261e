// CpuTarget (see cpu_target.h): detection through CPUID and XGETBV, so a feature the OS does not enable
// (AVX-512 register state, AMX tiles) counts as missing, and the `--cpu-features` names.
#include "detrq/runtime/cpu_target.h"

#include <algorithm>
#include <sstream>

#include "detrq/core/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace detrq::runtime {
namespace {

constexpr const char* kNames[kCpuFeatureCount] = {"sse4.2",     "avx",     "avx2",       "fma",      "f16c",
                                                  "avx512f",    "avx512bw", "avx512vl",   "avx512vnni", "avxvnni",
                                                  "avx512bf16", "amx-tile", "amx-int8",   "amx-bf16"};

#if defined(__x86_64__)
struct CpuidRegs {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegs r;
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) return {};
  return r;
}

bool bit(unsigned reg, int b) { return (reg >> b) & 1U; }

// The register state the OS saves and restores (XCR0); zero where XGETBV may not be used.
uint64_t enabled_state(const CpuidRegs& leaf1) {
  if (!bit(leaf1.ecx, 27)) return 0;  // OSXSAVE
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux hands out the AMX tile state only to a process that asks for it (since 5.16).
bool amx_permitted() {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuTarget detect() {
  using F = CpuFeature;
  const CpuidRegs l1 = cpuid(1, 0);
  const CpuidRegs l7 = cpuid(7, 0);
  const CpuidRegs l7s1 = l7.eax >= 1 ? cpuid(7, 1) : CpuidRegs{};
  const uint64_t xcr0 = enabled_state(l1);
  const bool avx_state = (xcr0 & 0x6) == 0x6;              // SSE and AVX registers
  const bool avx512_state = avx_state && (xcr0 & 0xE0) == 0xE0;  // opmasks, upper ZMM halves, ZMM16-31
  const bool amx_state = (xcr0 & 0x60000) == 0x60000 && amx_permitted();  // XTILECFG, XTILEDATA
  CpuTarget t;
  auto set = [&t](F f, bool on) {
    if (on) t = t.with(f);
  };
  set(F::kSse42, bit(l1.ecx, 20));
  set(F::kAvx, avx_state && bit(l1.ecx, 28));
  set(F::kFma, avx_state && bit(l1.ecx, 12));
  set(F::kF16c, avx_state && bit(l1.ecx, 29));
  set(F::kAvx2, avx_state && bit(l7.ebx, 5));
  set(F::kAvxVnni, avx_state && bit(l7s1.eax, 4));
  set(F::kAvx512f, avx512_state && bit(l7.ebx, 16));
  set(F::kAvx512bw, avx512_state && bit(l7.ebx, 30));
  set(F::kAvx512vl, avx512_state && bit(l7.ebx, 31));
  set(F::kAvx512vnni, avx512_state && bit(l7.ecx, 11));
  set(F::kAvx512bf16, avx512_state && bit(l7s1.eax, 5));
  const bool amx = amx_state && bit(l7.edx, 24);
  set(F::kAmxTile, amx);
  set(F::kAmxBf16, amx && bit(l7.edx, 22));
  set(F::kAmxInt8, amx && bit(l7.edx, 25));
  return t;
}
#else
CpuTarget detect() { return {}; }
#endif

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

}  // namespace

CpuTarget::CpuTarget(std::initializer_list<CpuFeature> features) {
  for (CpuFeature f : features) bits_ |= 1U << static_cast<int>(f);
}

const CpuTarget& CpuTarget::host() {
  static const CpuTarget detected = detect();
  return detected;
}

const char* CpuTarget::name(CpuFeature feature) { return kNames[static_cast<int>(feature)]; }

const std::vector<std::string>& CpuTarget::known_names() {
  static const std::vector<std::string> names(std::begin(kNames), std::end(kNames));
  return names;
}

CpuTarget CpuTarget::parse(std::string_view text) {
  std::string t(text);
  std::replace(t.begin(), t.end(), ',', ' ');
  std::istringstream in(t);
  CpuTarget out;
  std::string word;
  while (in >> word) {
    if (word == "host") {
      out = out.united(host());
      continue;
    }
    if (word == "none") continue;
    const auto& known = known_names();
    const auto it = std::find(known.begin(), known.end(), word);
    if (it == known.end()) {
      throw Error(ErrorKind::kUsage, "--cpu-features", "unknown CPU feature '" + word + "'", "known: " + join(known));
    }
    out = out.with(static_cast<CpuFeature>(it - known.begin()));
  }
  return out;
}

CpuTarget CpuTarget::with(CpuFeature feature) const {
  CpuTarget t = *this;
  t.bits_ |= 1U << static_cast<int>(feature);
  return t;
}

CpuTarget CpuTarget::intersected(const CpuTarget& other) const {
  CpuTarget t;
  t.bits_ = bits_ & other.bits_;
  return t;
}

CpuTarget CpuTarget::united(const CpuTarget& other) const {
  CpuTarget t;
  t.bits_ = bits_ | other.bits_;
  return t;
}

CpuTarget CpuTarget::lacking_from(const CpuTarget& available) const {
  CpuTarget t;
  t.bits_ = bits_ & ~available.bits_;
  return t;
}

std::vector<std::string> CpuTarget::names() const {
  std::vector<std::string> out;
  for (int i = 0; i < kCpuFeatureCount; ++i) {
    if (has(static_cast<CpuFeature>(i))) out.emplace_back(kNames[i]);
  }
  return out;
}

std::string CpuTarget::to_string() const { return empty() ? "none" : join(names()); }

CpuTarget narrowed_host_target(std::string_view features) {
  if (features.empty() || features == "host") return CpuTarget::host();
  const CpuTarget wanted = CpuTarget::parse(features);
  const CpuTarget missing = wanted.lacking_from(CpuTarget::host());
  if (!missing.empty()) {
    throw_unsupported("--cpu-features", "this CPU lacks " + missing.to_string() + " (it has: " +
                                            CpuTarget::host().to_string() + ")",
                      "name only features this CPU has, or run where they exist");
  }
  return wanted;
}

}  // namespace detrq::runtime
