// Session: turns an ONNX model into a fixed execution plan at load (topological order, inferred
// static shapes, folded constants, dead nodes removed, one arena laid out from tensor lifetimes) and
// runs it without allocating.
#include "detrq/runtime/session.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_map>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/core/thread_pool.h"
#include "detrq/onnx/graph_passes.h"
#include "detrq/runtime/kernel.h"
#include "memory_plan.h"
#include "runtime/passes/pass.h"

namespace detrq::runtime {
namespace {
using Clock = std::chrono::steady_clock;

enum class ValueKind { kInput, kConstant, kActivation };

struct Value {
  std::string name;
  ValueKind kind = ValueKind::kActivation;
  TensorType type;
  int buffer = -1;        // activations: index into the arena plan (aliases share their source's)
  int alias_of = -1;      // value whose storage this one views, or -1
  int last_step = -1;     // last step reading it
};

struct Step {
  std::size_t node = 0;  // index into Impl::nodes
  std::unique_ptr<Kernel> kernel;
  std::vector<int> inputs;   // value ids, -1 for omitted
  std::vector<int> outputs;  // value ids, -1 for omitted
  std::vector<const Tensor*> in_ptrs;
  std::vector<Tensor*> out_ptrs;
  bool alias = false;        // output 0 views input 0; run() is not called
  bool rebind = false;       // alias of a graph input: the view is remade each run
  double total_ms = 0.0;
  int64_t calls = 0;
};

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

bool shape_valid(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; });
}

// What packed states are keyed by: stable across builds of the same graph, unlike node indices.
const std::string& node_key(const onnx::Node& node) {
  for (const auto& o : node.outputs) {
    if (!o.empty()) return o;
  }
  return node.name;
}

std::size_t state_bytes(const PackedState& state) {
  std::size_t n = 0;
  for (const auto& b : state.blobs) n += b.nbytes();
  return n;
}
}  // namespace

struct Session::Impl {
  SessionOptions options;
  const KernelRegistry* registry = nullptr;
  onnx::Model model;            // the plan as a model (what model() returns)
  std::vector<onnx::Node> nodes;  // kernels may keep references: never resized after kernels exist
  std::vector<onnx::ValueInfo> inputs;
  std::vector<onnx::ValueInfo> outputs;
  std::vector<Value> values;
  std::unordered_map<std::string, int> value_ids;
  std::vector<Tensor> slots;    // one per value; stable addresses for the steps' pointers
  std::vector<Step> steps;
  std::vector<int> input_ids;
  std::vector<int> output_ids;
  std::shared_ptr<void> arena;
  std::size_t arena_bytes = 0;
  std::size_t weight_bytes = 0;
  std::size_t packed_bytes = 0;
  // keep_int8_weights: folded DequantizeLinear of int8 weights, by the id of the constant they computed.
  struct DequantizedWeight {
    std::size_t node = 0;  // the DequantizeLinear, index into nodes
    QuantizedConstant source;
  };
  std::map<int, DequantizedWeight> dequantized;
  std::unique_ptr<core::ThreadPool> pool;
  bool profiling = false;
  std::vector<PassReport> pass_reports;

  void build(onnx::Model source);
  int value_id(const std::string& name) const {
    auto it = value_ids.find(name);
    return it == value_ids.end() ? -1 : it->second;
  }
  int add_value(const std::string& name, ValueKind kind, TensorType type) {
    const int id = static_cast<int>(values.size());
    values.push_back(Value{name, kind, std::move(type)});
    value_ids[name] = id;
    return id;
  }
};

namespace {

// Static input types: the declared ones, with unknown dimensions filled from options.input_shapes.
std::vector<onnx::ValueInfo> resolve_inputs(const onnx::Graph& graph, const SessionOptions& options) {
  std::vector<onnx::ValueInfo> out;
  std::set<std::string> names;
  for (const auto& in : graph.inputs) names.insert(in.name);
  for (const auto& [name, shape] : options.input_shapes) {
    if (!names.count(name)) {
      throw Error(ErrorKind::kUsage, "input '" + name + "'", "is not an input of the model",
                  "model inputs: " + join(std::vector<std::string>(names.begin(), names.end())));
    }
  }
  for (onnx::ValueInfo in : graph.inputs) {
    const std::string where = "input '" + in.name + "'";
    if (core::dtype_size(in.dtype) == 0) {
      throw_unsupported(where, std::string("has dtype ") + core::dtype_name(in.dtype), "detrq runs numeric tensors");
    }
    auto given = options.input_shapes.find(in.name);
    if (given != options.input_shapes.end()) {
      const Shape& s = given->second;
      if (!shape_valid(s)) throw Error(ErrorKind::kUsage, where, "shape " + core::shape_to_string(s) + " is negative");
      if (in.has_shape) {
        bool fits = s.size() == in.shape.size();
        for (std::size_t i = 0; fits && i < s.size(); ++i) fits = in.shape[i] < 0 || in.shape[i] == s[i];
        if (!fits) {
          throw Error(ErrorKind::kUsage, where,
                      "shape " + core::shape_to_string(s) + " does not fit the declared " +
                          core::shape_to_string(in.shape) + " (-1: any)");
        }
      }
      in.shape = s;
      in.has_shape = true;
    }
    if (!in.has_shape || !shape_valid(in.shape)) {
      throw Error(ErrorKind::kUsage, where,
                  "has no static shape (declared " + (in.has_shape ? core::shape_to_string(in.shape) : "none") + ")",
                  "give its shape in SessionOptions::input_shapes");
    }
    out.push_back(std::move(in));
  }
  return out;
}

// One error listing every operator the registry cannot run, so a user sees the whole gap at once.
void refuse_unsupported(const onnx::Model& model, const onnx::Graph& graph, const KernelRegistry& registry) {
  std::set<std::string> missing;
  for (const auto& node : graph.nodes) {
    const int64_t opset = model.opset(node.domain);
    if (opset > 0 && registry.find(node.domain, node.op_type, static_cast<int>(opset))) continue;
    missing.insert(node.op_type + " (domain " + (node.domain.empty() ? "ai.onnx" : node.domain) + ", opset " +
                   std::to_string(opset) + ")");
  }
  if (!missing.empty()) {
    throw_unsupported("", std::to_string(missing.size()) + " unsupported operator" +
                                   (missing.size() == 1 ? "" : "s") + ": " +
                                   join(std::vector<std::string>(missing.begin(), missing.end())),
                      "detrq has no kernel for them at this opset");
  }
}

// Runs `fn`, turning non-detrq exceptions into internal errors that name the node.
template <typename Fn>
auto guarded(const onnx::Node& node, const char* phase, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInternal, node.describe(), std::string(phase) + " failed: " + e.what(), "a bug in its kernel");
  }
}
}  // namespace

void Session::Impl::build(onnx::Model source) {
  registry = options.registry ? options.registry : &KernelRegistry::builtin();
  onnx::Graph& graph = source.graph;
  onnx::constants_to_initializers(graph);
  // Weights an engine file left out because a packed state stands in for them: an undefined
  // placeholder keeps the graph passes' bookkeeping whole, value_info gives their type.
  std::map<std::string, TensorType> released_types;
  if (!options.packed_states.empty()) {
    std::set<std::string> produced;
    for (const auto& in : graph.inputs) produced.insert(in.name);
    for (const auto& [name, t] : graph.initializers) produced.insert(name);
    for (const auto& n : graph.nodes) produced.insert(n.outputs.begin(), n.outputs.end());
    for (const auto& n : graph.nodes) {
      if (!options.packed_states.count(node_key(n))) continue;
      for (const auto& in : n.inputs) {
        auto info = graph.value_info.find(in);
        if (in.empty() || produced.count(in) || info == graph.value_info.end()) continue;
        released_types[in] = TensorType{info->second.dtype, info->second.shape};
        graph.initializers[in] = Tensor();
        produced.insert(in);
      }
    }
  }
  onnx::remove_dead_nodes(graph);  // also checks for cycles and dangling inputs
  refuse_unsupported(source, graph, *registry);
  passes::PassOptions pass_options;
  pass_options.fuse_qdq = options.fuse_qdq;  // before folding turns weight DQs into floats
  pass_options.fuse_operators = options.fuse_operators;
  pass_options.keep = options.keep_tensors;
  pass_reports = passes::run_passes(source, pass_options);
  inputs = resolve_inputs(graph, options);

  // Nodes in execution order, kept for the kernels' lifetime.
  const std::vector<std::size_t> order = onnx::topological_order(graph);
  nodes.reserve(order.size());
  for (std::size_t i : order) nodes.push_back(std::move(graph.nodes[i]));

  for (const auto& in : inputs) input_ids.push_back(add_value(in.name, ValueKind::kInput, {in.dtype, in.shape}));
  std::vector<Tensor> constants;  // by value id; empty Tensor where not constant
  auto set_constant = [&](int id, Tensor t) {
    if (constants.size() <= static_cast<std::size_t>(id)) constants.resize(static_cast<std::size_t>(id) + 1);
    constants[static_cast<std::size_t>(id)] = std::move(t);
  };
  for (auto& [name, t] : graph.initializers) {
    if (!t.defined()) {
      add_value(name, ValueKind::kConstant, released_types.at(name));  // no value: constant_of() is nullptr
      continue;
    }
    set_constant(add_value(name, ValueKind::kConstant, {t.dtype(), t.shape()}), t);
  }
  auto constant_of = [&](int id) -> const Tensor* {
    if (id < 0 || static_cast<std::size_t>(id) >= constants.size()) return nullptr;
    const Tensor& t = constants[static_cast<std::size_t>(id)];
    return t.defined() ? &t : nullptr;
  };

  // Shape inference and constant folding, node by node. Folding runs kernels here and now: with the part
  // of the target this CPU has (a target wider than the host only packs).
  const CpuTarget fold_target = options.target.intersected(CpuTarget::host());
  std::size_t folded = 0;
  std::size_t restored = 0;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const onnx::Node& node = nodes[n];
    const int opset = static_cast<int>(source.opset(node.domain));
    const KernelFactory* factory = registry->find(node.domain, node.op_type, opset);
    DETRQ_ASSERT(factory != nullptr, "kernel vanished for " + node.describe());
    Step step;
    step.node = n;
    step.kernel = guarded(node, "creating its kernel", [&] { return (*factory)(node, opset); });
    InferContext ictx{node, opset, {}, {}, options.target};
    bool all_constant = true;
    for (const auto& in : node.inputs) {
      const int id = in.empty() ? -1 : value_id(in);
      DETRQ_ASSERT(in.empty() || id >= 0, "unplanned input '" + in + "' of " + node.describe());
      step.inputs.push_back(id);
      ictx.input_types.push_back(id < 0 ? TensorType{} : values[static_cast<std::size_t>(id)].type);
      ictx.input_values.push_back(constant_of(id));
      if (id >= 0 && !constant_of(id)) all_constant = false;
    }
    std::vector<TensorType> types = guarded(node, "shape inference", [&] { return step.kernel->infer(ictx); });
    if (types.size() < node.outputs.size()) {
      throw Error(ErrorKind::kInternal, node.describe(),
                  "its kernel inferred " + std::to_string(types.size()) + " outputs for " +
                      std::to_string(node.outputs.size()),
                  "a bug in its kernel");
    }
    for (std::size_t o = 0; o < node.outputs.size(); ++o) {
      if (!shape_valid(types[o].shape) || core::dtype_size(types[o].dtype) == 0) {
        throw Error(ErrorKind::kInternal, node.describe(),
                    "inferred output " + std::to_string(o) + " as " + core::dtype_name(types[o].dtype) +
                        core::shape_to_string(types[o].shape),
                    "a bug in its kernel");
      }
      step.outputs.push_back(node.outputs[o].empty() ? -1 : add_value(node.outputs[o], ValueKind::kActivation, types[o]));
    }
    if (options.fold_constants && !all_constant && node.domain.empty() &&
        (node.op_type == "Shape" || node.op_type == "Size") && !step.outputs.empty() && step.outputs[0] >= 0 &&
        ictx.input_present(0)) {
      // Shapes are static, so Shape and Size are constants whatever their input's values: this is
      // what lets the Gather/Concat/Reshape shape arithmetic after them fold away.
      const Shape& in_shape = ictx.input_types.at(0).shape;
      Tensor value;
      if (node.op_type == "Size") {
        value = Tensor::scalar<int64_t>(core::shape_numel(in_shape));
      } else {
        const auto rank = static_cast<int64_t>(in_shape.size());
        auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
        const int64_t start = clamp(node.attr_int("start", 0));
        const int64_t end = std::max(start, clamp(node.attr_int("end", rank)));
        value = Tensor::from_vector<int64_t>({end - start}, Shape(in_shape.begin() + start, in_shape.begin() + end));
      }
      if (value.dtype() != types[0].dtype || value.shape() != types[0].shape) {
        throw Error(ErrorKind::kInternal, node.describe(), "its kernel inferred another type than the shape it reads",
                    "a bug in its kernel");
      }
      values[static_cast<std::size_t>(step.outputs[0])].kind = ValueKind::kConstant;
      set_constant(step.outputs[0], std::move(value));
      ++folded;
      continue;
    }
    if (options.fold_constants && all_constant) {
      // Every input is known: compute the outputs now and keep them as constants.
      std::vector<Tensor> outs(node.outputs.size());
      std::vector<const Tensor*> ins;
      for (int id : step.inputs) ins.push_back(constant_of(id));
      if (step.kernel->output_aliases_input()) {
        outs[0] = ins.at(0)->reshaped(types[0].shape);
      } else {
        std::vector<Tensor*> out_ptrs;
        for (std::size_t o = 0; o < outs.size(); ++o) {
          outs[o] = Tensor::empty(types[o].dtype, types[o].shape);
          out_ptrs.push_back(node.outputs[o].empty() ? nullptr : &outs[o]);
        }
        if (!pool) pool = std::make_unique<core::ThreadPool>(options.threads);
        guarded(node, "constant folding", [&] {
          const InferContext fold_ctx{node, opset, ictx.input_types, ictx.input_values, fold_target};
          step.kernel->prepare(fold_ctx);
          RunContext rctx{ins, out_ptrs, *pool, fold_target};
          step.kernel->run(rctx);
          return 0;
        });
      }
      // Before set_constant() below, which may move the constants `ins` points into.
      if (options.keep_int8_weights && node.domain.empty() && node.op_type == "DequantizeLinear" &&
          ins.at(0)->dtype() == DType::kInt8 && step.outputs.at(0) >= 0) {
        QuantizedConstant q{*ins[0], *ins[1], ins.size() > 2 && ins[2] ? *ins[2] : Tensor(), -1};
        if (q.scale.numel() > 1) {
          q.axis = node.attr_int("axis", 1);
          if (q.axis < 0) q.axis += q.codes.rank();
        }
        dequantized[step.outputs[0]] = DequantizedWeight{n, std::move(q)};
      }
      for (std::size_t o = 0; o < outs.size(); ++o) {
        const int id = step.outputs[o];
        if (id < 0) continue;
        values[static_cast<std::size_t>(id)].kind = ValueKind::kConstant;
        set_constant(id, std::move(outs[o]));
      }
      ++folded;
      continue;
    }
    auto state = options.packed_states.find(node_key(node));
    if (state != options.packed_states.end()) {
      const bool ok = guarded(node, "restoring its packed state", [&] {
        return step.kernel->restore_packed_state(ictx, state->second);
      });
      if (!ok) {
        throw_invalid(node.describe(),
                      "its stored packed state (layout '" + state->second.layout + "', " +
                          std::to_string(state->second.blobs.size()) + " blobs) does not fit this detrq's " +
                          node.op_type + " kernel",
                      "rebuild the engine with this detrq's `detrq build-engine`");
      }
      ++restored;
    } else {
      guarded(node, "weight preparation", [&] {
        step.kernel->prepare(ictx);
        return 0;
      });
    }
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      if (released_types.count(node.inputs[i]) && step.kernel->reads_constant_input(i)) {
        throw_invalid(node.describe(),
                      "reads weight '" + node.inputs[i] + "', which the model does not hold (only a packed state " +
                          (state == options.packed_states.end() ? "could stand in for it, and there is none)"
                                                                : "stands in for it, and the kernel still reads it)"),
                      "rebuild the engine with this detrq's `detrq build-engine`");
      }
    }
    step.alias = step.kernel->output_aliases_input() && !step.inputs.empty() && step.inputs[0] >= 0 &&
                 !step.outputs.empty() && step.outputs[0] >= 0;
    steps.push_back(std::move(step));
  }

  // Graph outputs (checked to exist by topological_order).
  for (const auto& out : graph.outputs) {
    const int id = value_id(out.name);
    DETRQ_ASSERT(id >= 0, "graph output '" + out.name + "' was not planned");
    const Value& v = values[static_cast<std::size_t>(id)];
    if (out.dtype != DType::kUndefined && out.dtype != v.type.dtype) {
      throw_invalid("graph output '" + out.name + "'",
                    std::string("is declared ") + core::dtype_name(out.dtype) + " but computes " +
                        core::dtype_name(v.type.dtype),
                    "the model is malformed");
    }
    output_ids.push_back(id);
    outputs.push_back(onnx::ValueInfo{out.name, v.type.dtype, v.type.shape, true});
  }

  // Dead steps after folding: nothing downstream of a graph output needs them.
  std::vector<bool> needed(values.size(), false);
  for (int id : output_ids) needed[static_cast<std::size_t>(id)] = true;
  std::vector<Step> live;
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    const bool used = std::any_of(it->outputs.begin(), it->outputs.end(),
                                  [&](int id) { return id >= 0 && needed[static_cast<std::size_t>(id)]; });
    if (!used) continue;
    for (int id : it->inputs) {
      if (id >= 0) needed[static_cast<std::size_t>(id)] = true;
    }
    live.push_back(std::move(*it));
  }
  std::reverse(live.begin(), live.end());
  const std::size_t dead = steps.size() - live.size();
  steps = std::move(live);
  pass_reports.push_back(PassReport{"fold-constants", 0, 0, folded, nodes.size(), nodes.size() - folded});
  pass_reports.push_back(PassReport{"remove-dead-steps", 0, 0, dead, nodes.size() - folded, steps.size()});

  // Lifetimes. A graph output stays alive to the end; an alias extends its source's lifetime.
  const int end_step = static_cast<int>(steps.size());
  auto root = [&](int id) {
    while (values[static_cast<std::size_t>(id)].alias_of >= 0) id = values[static_cast<std::size_t>(id)].alias_of;
    return id;
  };
  std::vector<int> first_step(values.size(), -1);
  for (int s = 0; s < end_step; ++s) {
    Step& step = steps[static_cast<std::size_t>(s)];
    for (int id : step.outputs) {
      if (id >= 0) first_step[static_cast<std::size_t>(id)] = s;
    }
    if (step.alias) values[static_cast<std::size_t>(step.outputs[0])].alias_of = step.inputs[0];
  }
  auto touch = [&](int id, int s) {
    Value& v = values[static_cast<std::size_t>(root(id))];
    v.last_step = std::max(v.last_step, s);
  };
  for (int s = 0; s < end_step; ++s) {
    const Step& step = steps[static_cast<std::size_t>(s)];
    for (int id : step.inputs) {
      if (id >= 0) touch(id, s);
    }
    for (int id : step.outputs) {
      if (id >= 0) touch(id, s);
    }
  }
  for (int id : output_ids) touch(id, end_step);

  // One arena for every activation that is not an alias.
  std::vector<detail::BufferLifetime> buffers;
  for (std::size_t id = 0; id < values.size(); ++id) {
    Value& v = values[id];
    if (v.kind != ValueKind::kActivation || v.alias_of >= 0 || first_step[id] < 0) continue;
    v.buffer = static_cast<int>(buffers.size());
    buffers.push_back({static_cast<std::size_t>(core::shape_numel(v.type.shape)) * core::dtype_size(v.type.dtype),
                       first_step[id], std::max(v.last_step, first_step[id])});
  }
  const detail::MemoryPlan plan = detail::plan_memory(buffers);
  arena_bytes = plan.arena_bytes;
  void* base = core::aligned_alloc_bytes(std::max<std::size_t>(arena_bytes, 1));
  arena = std::shared_ptr<void>(base, [](void* p) { core::aligned_free_bytes(p); });
  auto* bytes = static_cast<std::byte*>(base);

  // Slots: constants and activations are bound once; inputs (and their aliases) each run.
  slots.assign(values.size(), Tensor());
  std::vector<bool> constant_used(values.size(), false);
  for (const Step& step : steps) {
    for (int id : step.inputs) {
      if (id >= 0 && values[static_cast<std::size_t>(id)].kind == ValueKind::kConstant) constant_used[static_cast<std::size_t>(id)] = true;
    }
  }
  for (int id : output_ids) {
    if (values[static_cast<std::size_t>(id)].kind == ValueKind::kConstant) constant_used[static_cast<std::size_t>(id)] = true;
  }
  // A constant that only kernels with a packed copy read is released: freed here (the source model
  // dies with this function), absent from model(), its type kept in value_info.
  std::vector<bool> constant_read(values.size(), false);
  for (const Step& step : steps) {
    for (std::size_t i = 0; i < step.inputs.size(); ++i) {
      const int id = step.inputs[i];
      if (id >= 0 && step.kernel->reads_constant_input(i)) constant_read[static_cast<std::size_t>(id)] = true;
    }
  }
  for (int id : output_ids) constant_read[static_cast<std::size_t>(id)] = true;
  std::size_t released_bytes = 0;
  std::vector<bool> released(values.size(), false);
  for (std::size_t id = 0; id < values.size(); ++id) {
    if (values[id].kind != ValueKind::kConstant || !constant_used[id] || constant_read[id]) continue;
    released[id] = true;
    if (id < constants.size()) {
      released_bytes += constants[id].nbytes();
      constants[id] = Tensor();
    }
  }
  for (const auto& [name, t] : graph.initializers) {
    const int id = value_id(name);
    if (id >= 0 && released[static_cast<std::size_t>(id)]) graph.initializers[name] = Tensor();
  }
  for (const Step& step : steps) packed_bytes += state_bytes(step.kernel->packed_state());
  for (std::size_t id = 0; id < values.size(); ++id) {
    const Value& v = values[id];
    if (v.kind == ValueKind::kConstant && constant_used[id] && !released[id]) {
      slots[id] = constants[id];
      weight_bytes += constants[id].nbytes();
    } else if (v.kind == ValueKind::kActivation && v.buffer >= 0) {
      slots[id] = Tensor::view(v.type.dtype, v.type.shape, bytes + plan.offsets[static_cast<std::size_t>(v.buffer)], arena);
    }
  }
  for (Step& step : steps) {
    if (step.alias) {
      const int out = step.outputs[0];
      const int src = root(out);
      const Value& rv = values[static_cast<std::size_t>(src)];
      const TensorType& type = values[static_cast<std::size_t>(out)].type;
      if (rv.kind == ValueKind::kInput) {
        step.rebind = true;
      } else {
        slots[static_cast<std::size_t>(out)] =
            Tensor::view(type.dtype, type.shape, slots[static_cast<std::size_t>(src)].raw_data(), arena);
      }
    }
    for (int id : step.inputs) step.in_ptrs.push_back(id < 0 ? nullptr : &slots[static_cast<std::size_t>(id)]);
    for (int id : step.outputs) step.out_ptrs.push_back(id < 0 ? nullptr : &slots[static_cast<std::size_t>(id)]);
  }
  if (!pool) pool = std::make_unique<core::ThreadPool>(options.threads);

  // The plan as a model: live nodes, used constants (folded ones included), inferred types.
  model.ir_version = source.ir_version;
  model.producer_name = source.producer_name;
  model.producer_version = source.producer_version;
  model.opset_imports = source.opset_imports;
  model.metadata = source.metadata;
  model.graph.name = graph.name;
  model.graph.inputs = inputs;
  model.graph.outputs = outputs;
  std::vector<onnx::Node> step_nodes;
  for (const Step& step : steps) step_nodes.push_back(nodes[step.node]);
  for (std::size_t id = 0; id < values.size(); ++id) {
    const Value& v = values[id];
    auto dq = dequantized.find(static_cast<int>(id));
    if (v.kind == ValueKind::kConstant && constant_used[id] && !released[id] && dq != dequantized.end()) {
      // keep_int8_weights: the int8 weight and its DequantizeLinear, first (their inputs are constants).
      const onnx::Node& dq_node = nodes[dq->second.node];
      const QuantizedConstant& q = dq->second.source;
      model.graph.nodes.push_back(dq_node);
      model.graph.initializers[dq_node.inputs.at(0)] = q.codes;
      model.graph.initializers[dq_node.inputs.at(1)] = q.scale;
      if (q.zero_point.defined()) model.graph.initializers[dq_node.inputs.at(2)] = q.zero_point;
    } else if (v.kind == ValueKind::kConstant && constant_used[id] && !released[id]) {
      model.graph.initializers[v.name] = constants[id];
    }
    if ((v.kind == ValueKind::kActivation && first_step[id] >= 0) || released[id]) {
      model.graph.value_info[v.name] = onnx::ValueInfo{v.name, v.type.dtype, v.type.shape, true};
    }
  }
  if (restored != options.packed_states.size()) {
    core::log_warn("session: {} of {} packed states given were restored (the others name no planned node)", restored,
                   options.packed_states.size());
  }
  model.graph.nodes.insert(model.graph.nodes.end(), step_nodes.begin(), step_nodes.end());
  if (!options.keep_int8_weights) dequantized.clear();
  core::log_debug(
      "session: {} nodes planned ({} folded, {} dead, {} restored), arena {} bytes, weights {} bytes ({} released), "
      "packed {} bytes",
      steps.size(), folded, dead, restored, arena_bytes, weight_bytes, released_bytes, packed_bytes);
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

std::map<std::string, Tensor> Session::run(const std::map<std::string, Tensor>& inputs, Observer* observer) {
  Impl& s = *impl_;
  const CpuTarget lacking = s.options.target.lacking_from(CpuTarget::host());
  if (!lacking.empty()) {
    throw_unsupported("session", "its target needs CPU features this CPU lacks: " + lacking.to_string(),
                      "a session packed for another CPU can only be stored (`detrq build-engine`), not run here");
  }
  for (const auto& [name, t] : inputs) {
    const int id = s.value_id(name);
    if (id < 0 || s.values[static_cast<std::size_t>(id)].kind != ValueKind::kInput) {
      std::vector<std::string> names;
      for (const auto& in : s.inputs) names.push_back(in.name);
      throw_invalid("input '" + name + "'", "is not an input of the model", "model inputs: " + join(names));
    }
  }
  for (std::size_t i = 0; i < s.inputs.size(); ++i) {
    const onnx::ValueInfo& info = s.inputs[i];
    auto it = inputs.find(info.name);
    if (it == inputs.end()) throw_invalid("input '" + info.name + "'", "is missing", "every model input must be given");
    const Tensor& t = it->second;
    if (t.dtype() != info.dtype) {
      throw_invalid("input '" + info.name + "'",
                    std::string("has dtype ") + core::dtype_name(t.dtype()) + ", the model expects " +
                        core::dtype_name(info.dtype));
    }
    if (t.shape() != info.shape) {
      throw_invalid("input '" + info.name + "'",
                    "has shape " + core::shape_to_string(t.shape()) + ", the model expects " +
                        core::shape_to_string(info.shape),
                    "resize or letterbox the input to the model's shape");
    }
    s.slots[static_cast<std::size_t>(s.input_ids[i])] = t;
  }
  for (Step& step : s.steps) {
    const onnx::Node& node = s.nodes[step.node];
    if (step.alias) {
      if (step.rebind) {
        const Tensor& src = *step.in_ptrs[0];
        const Value& v = s.values[static_cast<std::size_t>(step.outputs[0])];
        *step.out_ptrs[0] = Tensor::view(v.type.dtype, v.type.shape, const_cast<void*>(src.raw_data()));
      }
    } else {
      RunContext ctx{step.in_ptrs, step.out_ptrs, *s.pool, s.options.target};
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
  std::map<std::string, Tensor> results;
  for (std::size_t i = 0; i < s.outputs.size(); ++i) {
    results[s.outputs[i].name] = s.slots[static_cast<std::size_t>(s.output_ids[i])].clone();
  }
  // Drop the references to the caller's input tensors.
  for (int id : s.input_ids) s.slots[static_cast<std::size_t>(id)] = Tensor();
  return results;
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
