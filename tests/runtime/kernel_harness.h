// Test helper: runs one built-in kernel on given inputs through the same infer/prepare/run calls the
// Session makes, so kernels can be tested without building a graph.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/core/thread_pool.h"
#include "detrq/runtime/kernel.h"

namespace detrq::testing {

struct KernelCall {
  onnx::Node node;
  int opset = 17;
  std::vector<core::Tensor> inputs;  // an undefined Tensor marks an omitted optional input
  bool inputs_constant = false;      // pass the values to infer() as constants
  int threads = 2;
  runtime::CpuTarget target = runtime::CpuTarget::host();  // what the kernel may use (narrow it per ISA path)
};

inline core::Tensor poisoned(core::DType dtype, const core::Shape& shape) {
  core::Tensor t = core::Tensor::empty(dtype, shape);
  std::memset(t.raw_data(), 0xAB, t.nbytes());
  if (dtype == core::DType::kFloat32) {
    for (float& v : t.span<float>()) v = std::numeric_limits<float>::quiet_NaN();
  } else if (dtype == core::DType::kFloat64) {
    for (double& v : t.span<double>()) v = std::numeric_limits<double>::quiet_NaN();
  } else if (dtype == core::DType::kFloat16 || dtype == core::DType::kBFloat16) {
    auto* bits = static_cast<uint16_t*>(t.raw_data());
    for (int64_t i = 0; i < t.numel(); ++i) bits[i] = 0x7FC1;  // a NaN in both formats
  }
  return t;
}

inline std::vector<core::Tensor> run_kernel(const KernelCall& call) {
  const runtime::KernelFactory* factory =
      runtime::KernelRegistry::builtin().find(call.node.domain, call.node.op_type, call.opset);
  if (!factory) throw_unsupported(call.node.op_type, "no kernel registered");
  std::unique_ptr<runtime::Kernel> kernel = (*factory)(call.node, call.opset);
  runtime::InferContext ictx{call.node, call.opset, {}, {}, call.target};
  for (const auto& t : call.inputs) {
    ictx.input_types.push_back(t.defined() ? runtime::TensorType{t.dtype(), t.shape()} : runtime::TensorType{});
    ictx.input_values.push_back(call.inputs_constant && t.defined() ? &t : nullptr);
  }
  std::vector<runtime::TensorType> out_types = kernel->infer(ictx);
  kernel->prepare(ictx);
  std::vector<core::Tensor> outputs;
  // Outputs start as poison (NaN for floats, 0xAB bytes otherwise), as arena memory would: a kernel that
  // leaves an element unwritten fails an expected-zero check instead of passing it by luck.
  for (const auto& type : out_types) outputs.push_back(poisoned(type.dtype, type.shape));
  if (kernel->output_aliases_input()) {
    outputs[0] = call.inputs[0].reshaped(out_types[0].shape);
    return outputs;
  }
  std::vector<const core::Tensor*> in_ptrs;
  for (const auto& t : call.inputs) in_ptrs.push_back(t.defined() ? &t : nullptr);
  std::vector<core::Tensor*> out_ptrs;
  for (auto& t : outputs) out_ptrs.push_back(&t);
  core::ThreadPool pool(call.threads);
  // The kernel's scratch, as the Session plans it, also poisoned: a kernel must not read what it did not
  // write there.
  const std::size_t scratch_bytes = kernel->scratch_bytes(pool.size());
  core::Tensor scratch = poisoned(core::DType::kUInt8, {static_cast<int64_t>(std::max<std::size_t>(scratch_bytes, 1))});
  runtime::RunContext rctx{in_ptrs, out_ptrs, pool, call.target,
                           {static_cast<std::byte*>(scratch.raw_data()), scratch_bytes}};
  kernel->run(rctx);
  return outputs;
}

}  // namespace detrq::testing
