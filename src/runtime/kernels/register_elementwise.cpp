// Registers the elementwise kernels (each kernel lives in its own file beside this one).
#include "runtime/kernels/kernels.h"

namespace detrq::runtime::kernels {

void register_elementwise_kernels(KernelRegistry& registry) { (void)registry; }

}  // namespace detrq::runtime::kernels
