// The one name of detrq's internal operator domain (the fused nodes of its plans: FusedMatMul,
// AttentionSoftmax, QMatMulF, QConvF, QAttentionSoftmax, QLayerNormalization) and the metadata key that marks a model as a plan detrq wrote.
#pragma once

namespace detrq::runtime {

// A model that uses kInternalDomain must carry kInternalPlanKey in its metadata, which the
// check-internal-domain pass writes into every model the Session plans, so hand-written ONNX files
// cannot.
inline constexpr const char* kInternalDomain = "com.detrq";
inline constexpr const char* kInternalPlanKey = "detrq.internal_ops";

}  // namespace detrq::runtime
