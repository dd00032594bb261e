// Registers the compute kernels (each kernel lives in its own file beside this one).
#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernels.h"
#include "runtime/internal_domain.h"

namespace detrq::runtime::kernels {

void register_compute_kernels(KernelRegistry& registry) {
  // One implementation covers each operator's versions from the first listed here; the kernels read
  // the opset where semantics changed (Softmax's axis at 13, Gemm's optional C at 11).
  registry.add("", "MatMul", 1, make_matmul_kernel);
  registry.add(kInternalDomain, "FusedMatMul", 1, make_fused_matmul_kernel);
  registry.add(kInternalDomain, "AttentionSoftmax", 1, make_attention_kernel);
  registry.add("", "Gemm", 7, make_gemm_kernel);
  registry.add("", "Conv", 1, make_conv_kernel);
  registry.add("", "LayerNormalization", 17, make_layer_normalization_kernel);
  registry.add(kInternalDomain, "QLayerNormalization", 1, make_qlayer_normalization_kernel);
  registry.add("", "Softmax", 1, make_softmax_kernel);
  registry.add("", "GridSample", 16, make_grid_sample_kernel);
  registry.add("", "Resize", 10, make_resize_kernel);
  registry.add("", "BatchNormalization", 9, make_batch_normalization_kernel);
  registry.add("", "InstanceNormalization", 6, make_instance_normalization_kernel);
  registry.add("", "MaxPool", 8, make_max_pool_kernel);
}

}  // namespace detrq::runtime::kernels
