// Session: loads an ONNX model, infers every shape, folds constants, plans one memory arena, and runs
// the graph, calling an Observer with every tensor a node produces.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/cpu_target.h"
#include "detrq/runtime/packed_state.h"

namespace detrq::runtime {

// Watches tensors as they are produced (calibration statistics, debugging). Called on the thread
// that runs the session, in execution order, for every output of every node that runs (outputs of
// folded nodes are constants, computed once at load, and not reported); the tensor is valid only
// during the call.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_tensor(const std::string& name, const core::Tensor& value) = 0;
};

class KernelRegistry;

struct SessionOptions {
  int threads = 0;  // 0: one per core
  // The instruction sets the kernels may use and pack for (narrowed by `--cpu-features`). A target wider
  // than this CPU's packs for it (an engine built for another machine), but such a Session refuses to run
  // (kUnsupported); constants folded at load are computed with the part of it this CPU has.
  CpuTarget target = CpuTarget::host();
  // Static shapes for inputs whose declared shape has unknown dimensions.
  std::map<std::string, core::Shape> input_shapes;
  bool fold_constants = true;
  // Fuse operators (a MatMul by a constant weight with its bias Add and GELU into one com.detrq
  // FusedMatMul). Fused-away tensors are never computed, so an Observer does not see them: name in
  // `keep_tensors` every tensor an observer must see (graph outputs always stay).
  bool fuse_operators = true;
  std::set<std::string> keep_tensors;
  // MatMuls and Convs between DequantizeLinear nodes run in int8 arithmetic (com.detrq QMatMulF and
  // QConvF; tensors in keep_tensors are not fused away either); off: in float.
  bool fuse_qdq = true;
  // Where operators find their kernels; nullptr means KernelRegistry::builtin(). Tests inject their own.
  const KernelRegistry* registry = nullptr;
  // Kernel states packed by an earlier Session (packed_states(), stored in an engine file), by node key
  // (the node's first output name): such a node's kernel restores its state instead of packing. Weights
  // only a restored kernel read may be absent from the model; graph.value_info must then declare their
  // type. A state that does not fit its kernel is refused (kInvalidInput naming the node).
  std::map<std::string, PackedState> packed_states;
  // For the engine builder: a constant that DequantizeLinear computes from int8 weights is folded and
  // packed as usual, but model() holds it as the int8 weights and their DequantizeLinear (folded again by
  // the Session that loads it), and packed_states() gives the packed copy as int8 codes where the kernel
  // can (Kernel::packed_state_from_codes). Keeps those int8 weights in memory.
  bool keep_int8_weights = false;
};

// What one step of planning changed in the graph (`detrq inspect --passes`): a graph pass
// (src/runtime/passes/pass_list.def), or the plan's own constant folding and dead-step removal.
struct PassReport {
  std::string pass;
  std::size_t rewritten = 0;  // nodes replaced by a new node (a fused node in the place of one it absorbs)
  std::size_t fused = 0;      // nodes absorbed into a rewritten one
  std::size_t removed = 0;    // nodes removed: dead, or folded into constants
  std::size_t nodes_before = 0;
  std::size_t nodes_after = 0;
  // What the pass saw but left alone, and why (report-unfused-qdq: the layers of a Q/DQ file that run in
  // float here).
  std::vector<std::string> notes;
};

struct OperatorProfile {
  std::string op_type;
  int64_t calls = 0;
  double total_ms = 0.0;
};

// One planned node's timings (fused nodes under their com.detrq type and the name of the node they
// replaced), with the shape of its first output.
struct NodeProfile {
  std::string name;
  std::string op_type;
  core::Shape output_shape;
  int64_t calls = 0;
  double total_ms = 0.0;
};

class Session {
 public:
  explicit Session(onnx::Model model, SessionOptions options = {});
  static Session load(const std::filesystem::path& path, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  const std::vector<onnx::ValueInfo>& inputs() const;   // with the static shapes in use
  const std::vector<onnx::ValueInfo>& outputs() const;
  // After folding and dead-node removal, in execution order; graph.value_info holds the inferred
  // dtype and static shape of every tensor a node computes.
  const onnx::Model& model() const;

  // Runs the graph (not concurrently: one arena); kUnsupported where the target has features this CPU lacks. Inputs are checked against the static input types (name, dtype, shape) with an
  // error naming the input. Returned outputs own their storage.
  std::map<std::string, core::Tensor> run(const std::map<std::string, core::Tensor>& inputs,
                                          Observer* observer = nullptr);
  // The same without allocating: `inputs` in the order of inputs(), `outputs` in the order of outputs(),
  // each with its dtype and shape and storage of its own (make_outputs() makes them); the results are
  // copied into them. Kernel scratch is planned into the arena, so no run, the first included, allocates
  // on the heap (tests/runtime/run_allocation_test.cpp counts). The inputs are read, never kept.
  void run(std::span<const core::Tensor> inputs, std::span<core::Tensor> outputs, Observer* observer = nullptr);
  std::vector<core::Tensor> make_outputs() const;

  std::size_t arena_bytes() const;          // the one arena planned at load
  std::size_t weight_bytes() const;         // constants the plan still holds (released ones excluded)
  std::size_t packed_bytes() const;         // kernels' packed copies of constants
  std::size_t planned_peak_bytes() const;   // arena, weights and packed copies
  // The state of every kernel that packed constant data, by node key (its first output name), to store
  // in an engine file; the blobs view the kernels' storage and are valid while this Session lives.
  // After load a constant is released (freed, absent from model(), its type kept in value_info) when
  // every node reading it has a packed copy: the states then stand in for it.
  std::map<std::string, PackedState> packed_states() const;
  // What each step of planning changed, in order.
  const std::vector<PassReport>& pass_reports() const;
  // Per-operator timings accumulated since enable_profiling(true).
  void enable_profiling(bool on);
  std::vector<OperatorProfile> profile() const;
  // The same per node, slowest first.
  std::vector<NodeProfile> node_profile() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detrq::runtime
