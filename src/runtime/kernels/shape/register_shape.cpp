// Registers the shape kernels (each kernel lives in its own file beside this one).
#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernels.h"

namespace detrq::runtime::kernels {

void register_shape_kernels(KernelRegistry& registry) {
  register_view_kernels(registry);
  register_shape_kernel(registry);
  register_constant_kernels(registry);
  register_concat_kernel(registry);
  register_split_kernel(registry);
  register_slice_kernel(registry);
  register_gather_kernels(registry);
  register_scatter_nd_kernel(registry);
  register_expand_tile_kernels(registry);
  register_transpose_kernel(registry);
  register_cumsum_kernel(registry);
  register_topk_kernel(registry);
  register_range_kernel(registry);
}

}  // namespace detrq::runtime::kernels
