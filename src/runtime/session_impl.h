// The Session's state (internal to runtime): the values and steps of a plan, the arena they live in,
// and the named stages that build them (session_plan.cpp); session.cpp runs the plan.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "detrq/core/allocation.h"
#include "detrq/core/error.h"
#include "detrq/core/thread_pool.h"
#include "detrq/runtime/kernel.h"
#include "detrq/runtime/session.h"

namespace detrq::runtime {

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
  int scratch_buffer = -1;   // the kernel's scratch: index into the arena plan, or -1
  std::span<std::byte> scratch;
  double total_ms = 0.0;
  int64_t calls = 0;
};

// What packed states are keyed by: stable across builds of the same graph, unlike node indices.
const std::string& node_key(const onnx::Node& node);
std::string join(const std::vector<std::string>& items);

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

struct Session::Impl {
  SessionOptions options;
  const KernelRegistry* registry = nullptr;
  onnx::Model model;              // the plan as a model (what model() returns)
  std::vector<onnx::Node> nodes;  // kernels may keep references: never resized after kernels exist
  std::vector<onnx::ValueInfo> inputs;
  std::vector<onnx::ValueInfo> outputs;
  std::vector<Value> values;
  std::unordered_map<std::string, int> value_ids;
  std::vector<Tensor> slots;  // one per value; stable addresses for the steps' pointers
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

  // What the stages of build() hand each other; dropped when the plan is done.
  struct Planning;

  void build(onnx::Model source);
  // The stages, in the order build() runs them (session_plan.cpp).
  void load_graph(onnx::Model& source, Planning& p);
  void run_graph_passes(onnx::Model& source);
  void choose_kernels(onnx::Model& source, Planning& p);
  void infer_shapes(onnx::Model& source, Planning& p);
  void remove_dead_steps(Planning& p);
  void pack_weights(Planning& p);
  void plan_memory(Planning& p);
  void bind_arena(onnx::Graph& graph, Planning& p);
  void describe_plan(const onnx::Model& source, Planning& p);

  // Pieces of those stages.
  void add_graph_values(onnx::Graph& graph, Planning& p);
  bool fold_shape_query(Step& step, const InferContext& ictx, const std::vector<TensorType>& types, Planning& p);
  void fold_constant_step(Step& step, const InferContext& ictx, const std::vector<TensorType>& types, Planning& p);
  void bind_graph_outputs(const onnx::Graph& graph);
  void release_packed_constants(onnx::Graph& graph, Planning& p);

  int value_id(const std::string& name) const {
    auto it = value_ids.find(name);
    return it == value_ids.end() ? -1 : it->second;
  }
  int add_value(const std::string& name, ValueKind kind, TensorType type) {
    // Inputs and activations get memory from the plan, constants were read or will be computed: a type
    // no machine could hold is refused here, before anything is allocated for it.
    if (core::dtype_size(type.dtype) != 0) core::check_tensor_allocation(type.dtype, type.shape, "tensor '" + name + "'");
    const int id = static_cast<int>(values.size());
    values.push_back(Value{name, kind, std::move(type)});
    value_ids[name] = id;
    return id;
  }
};

}  // namespace detrq::runtime
