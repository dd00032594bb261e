// Session: the public face of a plan (built in stages by session_plan.cpp) and running it: each step's
// kernel in order, on tensors bound once into one arena.
#include "detrq/runtime/session.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <unordered_map>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/core/thread_pool.h"
#include "detrq/runtime/kernel.h"
#include "runtime/session_impl.h"

namespace detrq::runtime {
namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

const std::string& node_key(const onnx::Node& node) {
  for (const auto& o : node.outputs) {
    if (!o.empty()) return o;
  }
  return node.name;
}

Session::Session(onnx::Model model, SessionOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->build(std::move(model));
}

Session Session::load(const std::filesystem::path& path, SessionOptions options) {
  onnx::Model model = onnx::load_model(path);
  try {
    return Session(std::move(model), std::move(options));
  } catch (const Error& e) {
    // Name the file: plan errors only know nodes and tensors.
    throw Error(e.kind(), e.where().empty() ? path.string() : path.string() + ": " + e.where(), e.problem(), e.hint());
  }
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const std::vector<onnx::ValueInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<onnx::ValueInfo>& Session::outputs() const { return impl_->outputs; }
const onnx::Model& Session::model() const { return impl_->model; }
const std::vector<PassReport>& Session::pass_reports() const { return impl_->pass_reports; }
std::size_t Session::arena_bytes() const { return impl_->arena_bytes; }
std::size_t Session::weight_bytes() const { return impl_->weight_bytes; }
std::size_t Session::packed_bytes() const { return impl_->packed_bytes; }
std::size_t Session::planned_peak_bytes() const {
  return impl_->arena_bytes + impl_->weight_bytes + impl_->packed_bytes;
}

std::map<std::string, PackedState> Session::packed_states() const {
  std::map<std::string, PackedState> out;
  for (const Step& step : impl_->steps) {
    PackedState state;
    for (std::size_t i = 0; i < step.inputs.size() && state.empty(); ++i) {
      auto dq = impl_->dequantized.find(step.inputs[i]);
      if (dq != impl_->dequantized.end() && !step.kernel->reads_constant_input(i)) {
        state = step.kernel->packed_state_from_codes(i, dq->second.source);
      }
    }
    if (state.empty()) state = step.kernel->packed_state();
    if (!state.empty()) out[node_key(impl_->nodes[step.node])] = std::move(state);
  }
  return out;
}

namespace {

// The checks of a run's tensors against the plan's static types, with errors naming the tensor.
void check_tensor(const char* what, const onnx::ValueInfo& info, const Tensor& t) {
  const std::string where = std::string(what) + " '" + info.name + "'";
  if (t.dtype() != info.dtype) {
    throw_invalid(where, std::string("has dtype ") + core::dtype_name(t.dtype()) + ", the model expects " +
                             core::dtype_name(info.dtype));
  }
  if (t.shape() != info.shape) {
    throw_invalid(where,
                  "has shape " + core::shape_to_string(t.shape()) + ", the model expects " +
                      core::shape_to_string(info.shape),
                  "resize or letterbox the input to the model's shape");
  }
  if (!t.raw_data() && t.nbytes() > 0) throw_invalid(where, "has no storage");
}

}  // namespace

std::map<std::string, Tensor> Session::run(const std::map<std::string, Tensor>& inputs, Observer* observer) {
  Impl& s = *impl_;
  for (const auto& [name, t] : inputs) {
    const int id = s.value_id(name);
    if (id < 0 || s.values[static_cast<std::size_t>(id)].kind != ValueKind::kInput) {
      std::vector<std::string> names;
      for (const auto& in : s.inputs) names.push_back(in.name);
      throw_invalid("input '" + name + "'", "is not an input of the model", "model inputs: " + join(names));
    }
  }
  std::vector<Tensor> ordered;
  for (const onnx::ValueInfo& info : s.inputs) {
    auto it = inputs.find(info.name);
    if (it == inputs.end()) throw_invalid("input '" + info.name + "'", "is missing", "every model input must be given");
    ordered.push_back(it->second);
  }
  std::vector<Tensor> outputs = make_outputs();
  run(ordered, outputs, observer);
  std::map<std::string, Tensor> results;
  for (std::size_t i = 0; i < s.outputs.size(); ++i) results[s.outputs[i].name] = std::move(outputs[i]);
  return results;
}

std::vector<Tensor> Session::make_outputs() const {
  std::vector<Tensor> out;
  for (const onnx::ValueInfo& info : impl_->outputs) out.push_back(Tensor::empty(info.dtype, info.shape));
  return out;
}

void Session::run(std::span<const Tensor> inputs, std::span<Tensor> outputs, Observer* observer) {
  Impl& s = *impl_;
  const CpuTarget lacking = s.options.target.lacking_from(CpuTarget::host());
  if (!lacking.empty()) {
    throw_unsupported("session", "its target needs CPU features this CPU lacks: " + lacking.to_string(),
                      "a session packed for another CPU can only be stored (`detrq build-engine`), not run here");
  }
  if (inputs.size() != s.inputs.size() || outputs.size() != s.outputs.size()) {
    throw_invalid("session run", "got " + std::to_string(inputs.size()) + " inputs and " +
                                     std::to_string(outputs.size()) + " outputs, the model has " +
                                     std::to_string(s.inputs.size()) + " and " + std::to_string(s.outputs.size()),
                  "pass them in the order of inputs() and outputs() (make_outputs() makes the outputs)");
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) check_tensor("input", s.inputs[i], inputs[i]);
  for (std::size_t i = 0; i < outputs.size(); ++i) check_tensor("output", s.outputs[i], outputs[i]);
  // Input slots are views, pointed at the caller's tensors for this run only (no copy, no allocation).
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    s.slots[static_cast<std::size_t>(s.input_ids[i])].retarget(const_cast<void*>(inputs[i].raw_data()));
  }
  struct ForgetInputs {  // also when a kernel throws
    Impl& s;
    ~ForgetInputs() {
      for (int id : s.input_ids) s.slots[static_cast<std::size_t>(id)].retarget(nullptr);
    }
  } forget{s};
  for (Step& step : s.steps) {
    const onnx::Node& node = s.nodes[step.node];
    if (step.alias) {
      if (step.rebind) step.out_ptrs[0]->retarget(const_cast<void*>(step.in_ptrs[0]->raw_data()));
    } else {
      RunContext ctx{step.in_ptrs, step.out_ptrs, *s.pool, s.options.target, step.scratch};
      if (s.profiling) {
        const auto start = Clock::now();
        guarded(node, "running", [&] {
          step.kernel->run(ctx);
          return 0;
        });
        step.total_ms += std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        ++step.calls;
      } else {
        guarded(node, "running", [&] {
          step.kernel->run(ctx);
          return 0;
        });
      }
    }
    if (observer) {
      for (std::size_t o = 0; o < step.outputs.size(); ++o) {
        if (step.outputs[o] >= 0) observer->on_tensor(node.outputs[o], *step.out_ptrs[o]);
      }
    }
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& result = s.slots[static_cast<std::size_t>(s.output_ids[i])];
    if (result.nbytes() > 0) std::memcpy(outputs[i].raw_data(), result.raw_data(), result.nbytes());
  }
}

void Session::enable_profiling(bool on) {
  impl_->profiling = on;
  if (on) {
    for (Step& step : impl_->steps) {
      step.total_ms = 0.0;
      step.calls = 0;
    }
  }
}

std::vector<NodeProfile> Session::node_profile() const {
  std::vector<NodeProfile> out;
  for (const Step& step : impl_->steps) {
    if (step.calls == 0) continue;
    const onnx::Node& node = impl_->nodes[step.node];
    const Tensor* first = step.out_ptrs.empty() ? nullptr : step.out_ptrs[0];
    out.push_back({node.name.empty() ? node.outputs.at(0) : node.name, node.op_type,
                   first ? first->shape() : Shape{}, step.calls, step.total_ms});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.total_ms > b.total_ms; });
  return out;
}

std::vector<OperatorProfile> Session::profile() const {
  std::map<std::string, OperatorProfile> by_type;
  for (const Step& step : impl_->steps) {
    if (step.calls == 0) continue;
    OperatorProfile& p = by_type[impl_->nodes[step.node].op_type];
    p.op_type = impl_->nodes[step.node].op_type;
    p.calls += step.calls;
    p.total_ms += step.total_ms;
  }
  std::vector<OperatorProfile> out;
  for (auto& [type, p] : by_type) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.total_ms > b.total_ms; });
  return out;
}

}  // namespace detrq::runtime
