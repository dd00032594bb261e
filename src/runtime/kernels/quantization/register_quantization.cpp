// Registers the quantization kernels (each kernel lives in its own file beside this one).
#include "runtime/kernels/kernels.h"
#include "runtime/kernels/quantization/quantization.h"
#include "runtime/internal_domain.h"

namespace detrq::runtime::kernels {

void register_quantization_kernels(KernelRegistry& registry) {
  // Opset 10 is per tensor only; 13 adds axis, 19 saturate (float8 only), 21 blocks (refused).
  for (int since : {10, 13, 19, 21}) {
    registry.add("", "QuantizeLinear", since, make_quantize_linear);
    registry.add("", "DequantizeLinear", since, make_dequantize_linear);
  }
  // Internal: only the Session's Q/DQ passes make these nodes (runtime/passes/fuse_qdq_matmul.cpp,
  // fuse_qdq_conv.cpp, qdq_attention_fusion.cpp).
  registry.add(kInternalDomain, "QMatMulF", 1, make_qmatmul_f);
  registry.add(kInternalDomain, "QConvF", 1, make_qconv_f);
  registry.add(kInternalDomain, "QAttentionSoftmax", 1, make_qattention_softmax);
}

}  // namespace detrq::runtime::kernels
