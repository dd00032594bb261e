// KernelRegistry: operator lookup by domain, type and opset.
#include "detrq/core/error.h"
#include "detrq/runtime/kernel.h"
#include "runtime/kernels/kernels.h"

namespace detrq::runtime {
namespace {
std::string canonical_domain(const std::string& domain) { return domain == "ai.onnx" ? std::string() : domain; }
}  // namespace

void KernelRegistry::add(const std::string& domain, const std::string& op_type, int since_version,
                         KernelFactory factory) {
  factories_[{canonical_domain(domain), op_type}][since_version] = std::move(factory);
}

const KernelFactory* KernelRegistry::find(const std::string& domain, const std::string& op_type, int opset) const {
  auto it = factories_.find({canonical_domain(domain), op_type});
  if (it == factories_.end()) return nullptr;
  auto v = it->second.upper_bound(opset);
  if (v == it->second.begin()) return nullptr;
  return &std::prev(v)->second;
}

std::vector<std::string> KernelRegistry::op_types(const std::string& domain) const {
  std::vector<std::string> out;
  for (const auto& [key, versions] : factories_) {
    if (key.first == canonical_domain(domain)) out.push_back(key.second);
  }
  return out;
}

const KernelRegistry& KernelRegistry::builtin() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
    kernels::register_elementwise_kernels(r);
    kernels::register_shape_kernels(r);
    kernels::register_reduction_kernels(r);
    kernels::register_compute_kernels(r);
    kernels::register_quantization_kernels(r);
    return r;
  }();
  return registry;
}

}  // namespace detrq::runtime
