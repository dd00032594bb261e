// CPU feature checks shared by the kernels (see cpu_support.h).
#include "runtime/kernels/cpu_support.h"

namespace detrq::runtime::kernels {

bool cpu_has_avx2_fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

bool cpu_has_avx512f() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}

}  // namespace detrq::runtime::kernels
