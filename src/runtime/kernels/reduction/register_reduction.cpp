// Registers the reduction kernels (each kernel lives in its own file beside this one).
#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernels.h"

namespace detrq::runtime::kernels {

void register_reduction_kernels(KernelRegistry& registry) {
  register_reduce_kernels(registry);
  register_arg_reduce_kernels(registry);
}

}  // namespace detrq::runtime::kernels
