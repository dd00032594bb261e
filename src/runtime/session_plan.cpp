// Building a Session's plan in named stages: load, graph passes, kernel choice, shapes (with constant
// folding), dead steps, packing, memory plan, arena, and the plan as a model.
#include <algorithm>
#include <set>

#include "detrq/core/allocation.h"
#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/onnx/graph_passes.h"
#include "memory_plan.h"
#include "runtime/passes/pass.h"
#include "runtime/session_impl.h"

namespace detrq::runtime {

struct Session::Impl::Planning {
  // Weights an engine file left out (a packed state stands in for them), with their declared type.
  std::map<std::string, TensorType> released_types;
  std::vector<Tensor> constants;                 // by value id; empty Tensor where not constant
  std::vector<std::unique_ptr<Kernel>> kernels;  // by node, until infer_shapes() gives them to steps
  std::vector<int> opsets;                       // by node
  std::size_t folded = 0, restored = 0, dead = 0, released_bytes = 0;
  std::vector<int> first_step;  // by value id: the step computing it, -1 when none
  detail::MemoryPlan memory;
  std::vector<bool> constant_used, released;  // by value id

  void set_constant(int id, Tensor t) {
    if (constants.size() <= static_cast<std::size_t>(id)) constants.resize(static_cast<std::size_t>(id) + 1);
    constants[static_cast<std::size_t>(id)] = std::move(t);
  }
  const Tensor* constant_of(int id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= constants.size()) return nullptr;
    const Tensor& t = constants[static_cast<std::size_t>(id)];
    return t.defined() ? &t : nullptr;
  }
};

namespace {

bool shape_valid(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; });
}

std::size_t state_bytes(const PackedState& state) {
  std::size_t n = 0;
  for (const auto& b : state.blobs) n += b.nbytes();
  return n;
}

// Static input types: the declared ones, with unknown dimensions filled from options.input_shapes.
onnx::ValueInfo resolve_input(onnx::ValueInfo in, const SessionOptions& options) {
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
  return in;
}

std::vector<onnx::ValueInfo> resolve_inputs(const onnx::Graph& graph, const SessionOptions& options) {
  std::set<std::string> names;
  for (const auto& in : graph.inputs) names.insert(in.name);
  for (const auto& [name, shape] : options.input_shapes) {
    if (!names.count(name)) {
      throw Error(ErrorKind::kUsage, "input '" + name + "'", "is not an input of the model",
                  "model inputs: " + join(std::vector<std::string>(names.begin(), names.end())));
    }
  }
  std::vector<onnx::ValueInfo> out;
  for (const onnx::ValueInfo& in : graph.inputs) out.push_back(resolve_input(in, options));
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

// Weights an engine file left out because a packed state stands in for them: an undefined placeholder
// keeps the graph passes' bookkeeping whole, value_info gives their type.
std::map<std::string, TensorType> placeholders_for_released_weights(onnx::Graph& graph, const SessionOptions& options) {
  std::map<std::string, TensorType> released_types;
  if (options.packed_states.empty()) return released_types;
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
  return released_types;
}


// The types the kernel inferred, checked: one per output, static and of a known dtype.
void check_inferred(const onnx::Node& node, const std::vector<TensorType>& types) {
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
  }
}

// Shape and Size of a static shape: the value they compute.
Tensor shape_query_value(const onnx::Node& node, const Shape& in_shape) {
  if (node.op_type == "Size") return Tensor::scalar<int64_t>(core::shape_numel(in_shape));
  const auto rank = static_cast<int64_t>(in_shape.size());
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(node.attr_int("start", 0));
  const int64_t end = std::max(start, clamp(node.attr_int("end", rank)));
  return Tensor::from_vector<int64_t>({end - start}, Shape(in_shape.begin() + start, in_shape.begin() + end));
}

}  // namespace

void Session::Impl::build(onnx::Model source) {
  registry = options.registry ? options.registry : &KernelRegistry::builtin();
  Planning p;
  load_graph(source, p);
  run_graph_passes(source);
  inputs = resolve_inputs(source.graph, options);
  choose_kernels(source, p);
  infer_shapes(source, p);
  bind_graph_outputs(source.graph);
  remove_dead_steps(p);
  pack_weights(p);
  plan_memory(p);
  bind_arena(source.graph, p);
  describe_plan(source, p);
}

void Session::Impl::load_graph(onnx::Model& source, Planning& p) {
  onnx::constants_to_initializers(source.graph);
  p.released_types = placeholders_for_released_weights(source.graph, options);
  onnx::remove_dead_nodes(source.graph);  // also checks for cycles and dangling inputs
  refuse_unsupported(source, source.graph, *registry);
}

void Session::Impl::run_graph_passes(onnx::Model& source) {
  passes::PassOptions pass_options;
  pass_options.fuse_qdq = options.fuse_qdq;
  pass_options.fuse_operators = options.fuse_operators;
  pass_options.keep = options.keep_tensors;
  pass_reports = passes::run_passes(source, pass_options);
}

// Nodes in execution order, kept for the kernels' lifetime, each with the kernel the registry gives it.
void Session::Impl::choose_kernels(onnx::Model& source, Planning& p) {
  const std::vector<std::size_t> order = onnx::topological_order(source.graph);
  nodes.reserve(order.size());
  for (std::size_t i : order) nodes.push_back(std::move(source.graph.nodes[i]));
  for (const onnx::Node& node : nodes) {
    const int opset = static_cast<int>(source.opset(node.domain));
    const KernelFactory* factory = registry->find(node.domain, node.op_type, opset);
    DETRQ_ASSERT(factory != nullptr, "kernel vanished for " + node.describe());
    p.opsets.push_back(opset);
    p.kernels.push_back(guarded(node, "creating its kernel", [&] { return (*factory)(node, opset); }));
  }
}

void Session::Impl::add_graph_values(onnx::Graph& graph, Planning& p) {
  for (const auto& in : inputs) input_ids.push_back(add_value(in.name, ValueKind::kInput, {in.dtype, in.shape}));
  for (auto& [name, t] : graph.initializers) {
    if (!t.defined()) {
      add_value(name, ValueKind::kConstant, p.released_types.at(name));  // no value: constant_of() is nullptr
      continue;
    }
    p.set_constant(add_value(name, ValueKind::kConstant, {t.dtype(), t.shape()}), t);
  }
}

// Shape inference and constant folding, node by node: a folded node leaves constants, not a step.
void Session::Impl::infer_shapes(onnx::Model& source, Planning& p) {
  add_graph_values(source.graph, p);
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const onnx::Node& node = nodes[n];
    Step step;
    step.node = n;
    step.kernel = std::move(p.kernels[n]);
    InferContext ictx{node, p.opsets[n], {}, {}, options.target};
    bool all_constant = true;
    for (const auto& in : node.inputs) {
      const int id = in.empty() ? -1 : value_id(in);
      DETRQ_ASSERT(in.empty() || id >= 0, "unplanned input '" + in + "' of " + node.describe());
      step.inputs.push_back(id);
      ictx.input_types.push_back(id < 0 ? TensorType{} : values[static_cast<std::size_t>(id)].type);
      ictx.input_values.push_back(p.constant_of(id));
      if (id >= 0 && !p.constant_of(id)) all_constant = false;
    }
    const std::vector<TensorType> types = guarded(node, "shape inference", [&] { return step.kernel->infer(ictx); });
    check_inferred(node, types);
    for (std::size_t o = 0; o < node.outputs.size(); ++o) {
      step.outputs.push_back(node.outputs[o].empty() ? -1 : add_value(node.outputs[o], ValueKind::kActivation, types[o]));
    }
    if (options.fold_constants && !all_constant && fold_shape_query(step, ictx, types, p)) continue;
    if (options.fold_constants && all_constant) {
      fold_constant_step(step, ictx, types, p);
      continue;
    }
    steps.push_back(std::move(step));
  }
  p.kernels.clear();
}

// Shapes are static, so Shape and Size are constants whatever their input's values: this is what lets
// the Gather/Concat/Reshape shape arithmetic after them fold away.
bool Session::Impl::fold_shape_query(Step& step, const InferContext& ictx, const std::vector<TensorType>& types,
                                     Planning& p) {
  const onnx::Node& node = ictx.node;
  if (!node.domain.empty() || (node.op_type != "Shape" && node.op_type != "Size") || step.outputs.empty() ||
      step.outputs[0] < 0 || !ictx.input_present(0)) {
    return false;
  }
  Tensor value = shape_query_value(node, ictx.input_types.at(0).shape);
  if (value.dtype() != types[0].dtype || value.shape() != types[0].shape) {
    throw Error(ErrorKind::kInternal, node.describe(), "its kernel inferred another type than the shape it reads",
                "a bug in its kernel");
  }
  values[static_cast<std::size_t>(step.outputs[0])].kind = ValueKind::kConstant;
  p.set_constant(step.outputs[0], std::move(value));
  ++p.folded;
  return true;
}

// Every input is known: compute the outputs now and keep them as constants.
void Session::Impl::fold_constant_step(Step& step, const InferContext& ictx, const std::vector<TensorType>& types,
                                       Planning& p) {
  const onnx::Node& node = ictx.node;
  std::vector<Tensor> outs(node.outputs.size());
  std::vector<const Tensor*> ins;
  for (int id : step.inputs) ins.push_back(p.constant_of(id));
  if (step.kernel->output_aliases_input()) {
    outs[0] = ins.at(0)->reshaped(types[0].shape);
  } else {
    std::vector<Tensor*> out_ptrs;
    for (std::size_t o = 0; o < outs.size(); ++o) {
      outs[o] = Tensor::empty(types[o].dtype, types[o].shape);
      out_ptrs.push_back(node.outputs[o].empty() ? nullptr : &outs[o]);
    }
    if (!pool) pool = std::make_unique<core::ThreadPool>(options.threads);
    // Folding runs kernels here and now: with the part of the target this CPU has (a target wider than
    // the host only packs).
    const CpuTarget fold_target = options.target.intersected(CpuTarget::host());
    guarded(node, "constant folding", [&] {
      const InferContext fold_ctx{node, ictx.opset, ictx.input_types, ictx.input_values, fold_target};
      step.kernel->prepare(fold_ctx);
      std::vector<std::byte> scratch(step.kernel->scratch_bytes(pool->size()) + core::kTensorAlignment);
      const auto aligned = (reinterpret_cast<std::uintptr_t>(scratch.data()) + core::kTensorAlignment - 1) /
                           core::kTensorAlignment * core::kTensorAlignment;
      RunContext rctx{ins, out_ptrs, *pool, fold_target,
                      {reinterpret_cast<std::byte*>(aligned), scratch.size() - core::kTensorAlignment}};
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
    dequantized[step.outputs[0]] = DequantizedWeight{step.node, std::move(q)};
  }
  for (std::size_t o = 0; o < outs.size(); ++o) {
    const int id = step.outputs[o];
    if (id < 0) continue;
    values[static_cast<std::size_t>(id)].kind = ValueKind::kConstant;
    p.set_constant(id, std::move(outs[o]));
  }
  ++p.folded;
}

// Graph outputs (checked to exist by topological_order), with the types the plan computes.
void Session::Impl::bind_graph_outputs(const onnx::Graph& graph) {
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
}

// Dead steps after folding: nothing downstream of a graph output needs them.
void Session::Impl::remove_dead_steps(Planning& p) {
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
  p.dead = steps.size() - live.size();
  steps = std::move(live);
  pass_reports.push_back(PassReport{"fold-constants", 0, 0, p.folded, nodes.size(), nodes.size() - p.folded, {}});
  pass_reports.push_back(PassReport{"remove-dead-steps", 0, 0, p.dead, nodes.size() - p.folded, steps.size(), {}});
}

// Each kernel packs its constant inputs, or adopts the state an engine file stored for it.
void Session::Impl::pack_weights(Planning& p) {
  for (Step& step : steps) {
    const onnx::Node& node = nodes[step.node];
    InferContext ictx{node, p.opsets[step.node], {}, {}, options.target};
    for (int id : step.inputs) {
      ictx.input_types.push_back(id < 0 ? TensorType{} : values[static_cast<std::size_t>(id)].type);
      ictx.input_values.push_back(p.constant_of(id));
    }
    auto state = options.packed_states.find(node_key(node));
    if (state != options.packed_states.end()) {
      const bool ok = guarded(node, "restoring its packed state",
                              [&] { return step.kernel->restore_packed_state(ictx, state->second); });
      if (!ok) {
        throw_invalid(node.describe(),
                      "its stored packed state (layout '" + state->second.layout + "', " +
                          std::to_string(state->second.blobs.size()) + " blobs) does not fit this detrq's " +
                          node.op_type + " kernel",
                      "rebuild the engine with this detrq's `detrq build-engine`");
      }
      ++p.restored;
    } else {
      guarded(node, "weight preparation", [&] {
        step.kernel->prepare(ictx);
        return 0;
      });
    }
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      if (p.released_types.count(node.inputs[i]) && step.kernel->reads_constant_input(i)) {
        throw_invalid(node.describe(),
                      "reads weight '" + node.inputs[i] + "', which the model does not hold (only a packed state " +
                          (state == options.packed_states.end() ? "could stand in for it, and there is none)"
                                                                : "stands in for it, and the kernel still reads it)"),
                      "rebuild the engine with this detrq's `detrq build-engine`");
      }
    }
    step.alias = step.kernel->output_aliases_input() && !step.inputs.empty() && step.inputs[0] >= 0 &&
                 !step.outputs.empty() && step.outputs[0] >= 0;
  }
}

// Lifetimes (a graph output stays alive to the end; an alias extends its source's), then one arena
// layout for every activation that is not an alias and every kernel's scratch (alive for its step).
void Session::Impl::plan_memory(Planning& p) {
  if (!pool) pool = std::make_unique<core::ThreadPool>(options.threads);
  const int end_step = static_cast<int>(steps.size());
  auto root = [&](int id) {
    while (values[static_cast<std::size_t>(id)].alias_of >= 0) id = values[static_cast<std::size_t>(id)].alias_of;
    return id;
  };
  p.first_step.assign(values.size(), -1);
  for (int s = 0; s < end_step; ++s) {
    Step& step = steps[static_cast<std::size_t>(s)];
    for (int id : step.outputs) {
      if (id >= 0) p.first_step[static_cast<std::size_t>(id)] = s;
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
  std::vector<detail::BufferLifetime> buffers;
  for (std::size_t id = 0; id < values.size(); ++id) {
    Value& v = values[id];
    if (v.kind != ValueKind::kActivation || v.alias_of >= 0 || p.first_step[id] < 0) continue;
    v.buffer = static_cast<int>(buffers.size());
    buffers.push_back({static_cast<std::size_t>(core::shape_numel(v.type.shape)) * core::dtype_size(v.type.dtype),
                       p.first_step[id], std::max(v.last_step, p.first_step[id])});
  }
  for (int s = 0; s < end_step; ++s) {
    Step& step = steps[static_cast<std::size_t>(s)];
    const std::size_t bytes = step.alias ? 0 : step.kernel->scratch_bytes(pool->size());
    if (bytes == 0) continue;
    step.scratch_buffer = static_cast<int>(buffers.size());
    step.scratch = {static_cast<std::byte*>(nullptr), bytes};  // placed by bind_arena
    buffers.push_back({bytes, s, s});
  }
  p.memory = detail::plan_memory(buffers);
  arena_bytes = p.memory.arena_bytes;
  core::check_allocation(arena_bytes, "the activation arena", "the activations live at once");
}

// A constant that only kernels with a packed copy read is released: freed here (the source model dies
// with build()), absent from model(), its type kept in value_info.
void Session::Impl::release_packed_constants(onnx::Graph& graph, Planning& p) {
  p.constant_used.assign(values.size(), false);
  std::vector<bool> constant_read(values.size(), false);
  for (const Step& step : steps) {
    for (std::size_t i = 0; i < step.inputs.size(); ++i) {
      const int id = step.inputs[i];
      if (id < 0) continue;
      if (values[static_cast<std::size_t>(id)].kind == ValueKind::kConstant) p.constant_used[static_cast<std::size_t>(id)] = true;
      if (step.kernel->reads_constant_input(i)) constant_read[static_cast<std::size_t>(id)] = true;
    }
  }
  for (int id : output_ids) {
    if (values[static_cast<std::size_t>(id)].kind == ValueKind::kConstant) p.constant_used[static_cast<std::size_t>(id)] = true;
    constant_read[static_cast<std::size_t>(id)] = true;
  }
  p.released.assign(values.size(), false);
  for (std::size_t id = 0; id < values.size(); ++id) {
    if (values[id].kind != ValueKind::kConstant || !p.constant_used[id] || constant_read[id]) continue;
    p.released[id] = true;
    if (id < p.constants.size()) {
      p.released_bytes += p.constants[id].nbytes();
      p.constants[id] = Tensor();
    }
  }
  for (const auto& [name, t] : graph.initializers) {
    const int id = value_id(name);
    if (id >= 0 && p.released[static_cast<std::size_t>(id)]) graph.initializers[name] = Tensor();
  }
}

// The arena, and every slot bound once: constants and activations; inputs (and their views) each run.
void Session::Impl::bind_arena(onnx::Graph& graph, Planning& p) {
  void* base = core::aligned_alloc_bytes(std::max<std::size_t>(arena_bytes, 1));
  arena = std::shared_ptr<void>(base, [](void* ptr) { core::aligned_free_bytes(ptr); });
  auto* bytes = static_cast<std::byte*>(base);
  slots.assign(values.size(), Tensor());
  release_packed_constants(graph, p);
  for (const Step& step : steps) packed_bytes += state_bytes(step.kernel->packed_state());
  for (std::size_t id = 0; id < values.size(); ++id) {
    const Value& v = values[id];
    if (v.kind == ValueKind::kConstant && p.constant_used[id] && !p.released[id]) {
      slots[id] = p.constants[id];
      weight_bytes += p.constants[id].nbytes();
    } else if (v.kind == ValueKind::kActivation && v.buffer >= 0) {
      slots[id] = Tensor::view(v.type.dtype, v.type.shape, bytes + p.memory.offsets[static_cast<std::size_t>(v.buffer)], arena);
    } else if (v.kind == ValueKind::kInput) {
      slots[id] = Tensor::view(v.type.dtype, v.type.shape, nullptr);  // pointed at the caller's tensor each run
    }
  }
  auto root = [&](int id) {
    while (values[static_cast<std::size_t>(id)].alias_of >= 0) id = values[static_cast<std::size_t>(id)].alias_of;
    return id;
  };
  for (Step& step : steps) {
    if (step.alias) {
      const int out = step.outputs[0];
      const int src = root(out);
      const TensorType& type = values[static_cast<std::size_t>(out)].type;
      if (values[static_cast<std::size_t>(src)].kind == ValueKind::kInput) {
        step.rebind = true;  // a view of the input, pointed at it each run
        slots[static_cast<std::size_t>(out)] = Tensor::view(type.dtype, type.shape, nullptr);
      } else {
        slots[static_cast<std::size_t>(out)] =
            Tensor::view(type.dtype, type.shape, slots[static_cast<std::size_t>(src)].raw_data(), arena);
      }
    }
    if (step.scratch_buffer >= 0) {
      const auto b = static_cast<std::size_t>(step.scratch_buffer);
      step.scratch = {bytes + p.memory.offsets[b], step.scratch.size()};
    }
    for (int id : step.inputs) step.in_ptrs.push_back(id < 0 ? nullptr : &slots[static_cast<std::size_t>(id)]);
    for (int id : step.outputs) step.out_ptrs.push_back(id < 0 ? nullptr : &slots[static_cast<std::size_t>(id)]);
  }
  if (!pool) pool = std::make_unique<core::ThreadPool>(options.threads);
}

// The plan as a model: live nodes, used constants (folded ones included), inferred types.
void Session::Impl::describe_plan(const onnx::Model& source, Planning& p) {
  model.ir_version = source.ir_version;
  model.producer_name = source.producer_name;
  model.producer_version = source.producer_version;
  model.opset_imports = source.opset_imports;
  model.metadata = source.metadata;
  model.graph.name = source.graph.name;
  model.graph.inputs = inputs;
  model.graph.outputs = outputs;
  for (std::size_t id = 0; id < values.size(); ++id) {
    const Value& v = values[id];
    const bool held = v.kind == ValueKind::kConstant && p.constant_used[id] && !p.released[id];
    auto dq = dequantized.find(static_cast<int>(id));
    if (held && dq != dequantized.end()) {
      // keep_int8_weights: the int8 weight and its DequantizeLinear, first (their inputs are constants).
      const onnx::Node& dq_node = nodes[dq->second.node];
      const QuantizedConstant& q = dq->second.source;
      model.graph.nodes.push_back(dq_node);
      model.graph.initializers[dq_node.inputs.at(0)] = q.codes;
      model.graph.initializers[dq_node.inputs.at(1)] = q.scale;
      if (q.zero_point.defined()) model.graph.initializers[dq_node.inputs.at(2)] = q.zero_point;
    } else if (held) {
      model.graph.initializers[v.name] = p.constants[id];
    }
    if ((v.kind == ValueKind::kActivation && p.first_step[id] >= 0) || p.released[id]) {
      model.graph.value_info[v.name] = onnx::ValueInfo{v.name, v.type.dtype, v.type.shape, true};
    }
  }
  for (const Step& step : steps) model.graph.nodes.push_back(nodes[step.node]);
  if (p.restored != options.packed_states.size()) {
    core::log_warn("session: {} of {} packed states given were restored (the others name no planned node)",
                   p.restored, options.packed_states.size());
  }
  if (!options.keep_int8_weights) dequantized.clear();
  core::log_debug(
      "session: {} nodes planned ({} folded, {} dead, {} restored), arena {} bytes, weights {} bytes ({} released), "
      "packed {} bytes",
      steps.size(), p.folded, p.dead, p.restored, arena_bytes, weight_bytes, p.released_bytes, packed_bytes);
}

}  // namespace detrq::runtime
