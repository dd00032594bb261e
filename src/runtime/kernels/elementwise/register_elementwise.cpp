// Registers the elementwise kernels (each kernel lives in its own file beside this one).
#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernels.h"

namespace detrq::runtime::kernels {

void register_elementwise_kernels(KernelRegistry& registry) {
  register_binary_kernels(registry);
  register_unary_kernels(registry);
  register_where_kernel(registry);
  register_cast_kernel(registry);
  register_clip_kernel(registry);
  register_parametric_activation_kernels(registry);
}

}  // namespace detrq::runtime::kernels
