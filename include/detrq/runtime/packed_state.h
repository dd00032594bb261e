// PackedState: the constant data a kernel derived from its weights at load (packed GEMM panels, int8
// blocks with their scales), in a form an engine file stores and hands back so that loading skips the
// packing and the original weights need not exist at all.
#pragma once

#include <string>
#include <vector>

#include "detrq/core/tensor.h"
#include "detrq/runtime/cpu_target.h"

namespace detrq::runtime {

struct PackedState {
  // What the blobs mean, versioned and naming every assumption a restore depends on, e.g.
  // "sgemm-b-panels/1 kc=256 nr=16". A kernel restores only a layout it recognizes exactly; an
  // ISA-specific format names its ISA (e.g. "... isa=avx512vnni"). Empty: the kernel packed nothing.
  std::string layout;
  // The packed data. From packed_state() they view the kernel's own storage (valid while its Session
  // lives); handed to restore_packed_state() they may view a read-only mapping, which the kernel keeps
  // alive through the tensors and never writes.
  std::vector<core::Tensor> blobs;
  // The CPU features the code that reads this layout needs (empty: any x86-64 CPU); an engine's header
  // lists their union.
  CpuTarget isa{};
  bool empty() const noexcept { return layout.empty(); }
};

// A constant that DequantizeLinear computed from constant int8 codes: y = (codes - zero_point) * scale,
// per tensor (scale has one value) or along `axis` (normalized, >= 0). Offered to kernels that pack such
// a constant, so that an engine file can keep the codes and dequantize them while restoring.
struct QuantizedConstant {
  core::Tensor codes;       // int8
  core::Tensor scale;       // float32, one value or one per channel of `axis`
  core::Tensor zero_point;  // int8 like the scale, or undefined for zero
  int64_t axis = -1;        // -1 when per tensor
};

}  // namespace detrq::runtime
