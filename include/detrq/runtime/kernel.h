// The kernel interface: one Kernel object per graph node, made once at load (where it can read its
// attributes and pre-pack constant weights), asked for its output types during shape inference, and
// run many times.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"
#include "detrq/core/thread_pool.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/cpu_target.h"
#include "detrq/runtime/packed_state.h"

namespace detrq::runtime {

using core::DType;
using core::Shape;
using core::Tensor;

struct TensorType {
  DType dtype = DType::kUndefined;
  Shape shape;  // fully static once shape inference has run
};

struct InferContext {
  const onnx::Node& node;
  int opset;
  std::vector<TensorType> input_types;        // one per node input; dtype kUndefined for omitted ones
  std::vector<const Tensor*> input_values;    // the value where the input is a constant, else nullptr
  // The instruction sets prepare() packs for and restore_packed_state() accepts (the Session's target;
  // for a node folded at load, the part of it this CPU runs).
  const CpuTarget& target;
  bool input_present(std::size_t i) const { return i < input_types.size() && input_types[i].dtype != DType::kUndefined; }
};

struct RunContext {
  std::span<const Tensor* const> inputs;  // nullptr for omitted optional inputs
  std::span<Tensor* const> outputs;        // preallocated with the inferred dtype and shape; nullptr if omitted
  core::ThreadPool& pool;
  const CpuTarget& target;  // the instruction sets run() may use (the Session's target)
  // scratch_bytes(pool.size()) bytes of scratch memory, 64-byte aligned: planned into the Session's arena
  // for this step alone (it may overlap tensors that are dead by then), its contents not kept.
  std::span<std::byte> scratch = {};
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Output dtypes and shapes from the input types (and constant input values). Throws kInvalidInput
  // naming the node when the inputs are not acceptable (wrong rank, dtype, broadcast mismatch).
  virtual std::vector<TensorType> infer(const InferContext& ctx) = 0;
  // Computes the outputs. Must not allocate per call where it can avoid it.
  virtual void run(RunContext& ctx) = 0;
  // Called once after inference with the constant inputs, before the first run: a chance to
  // pre-pack weights. Default: nothing.
  virtual void prepare(const InferContext& ctx) { (void)ctx; }
  // Output 0 may share input 0's storage (Reshape, Squeeze, Identity...): the Session then makes
  // output 0 a view of input 0 and does not call run() at all.
  virtual bool output_aliases_input() const { return false; }
  // Bytes of scratch memory run() needs (RunContext::scratch), asked after prepare() or
  // restore_packed_state(), for a pool of `threads` threads (a kernel lays out per-thread parts itself).
  // Planned into the arena, so that a run allocates nothing. Default: none.
  virtual std::size_t scratch_bytes(int threads) const {
    (void)threads;
    return 0;
  }

  // Pre-packed constant data, for engine files. A kernel that packs in prepare() (or in
  // restore_packed_state()) returns it here; the default packs nothing.
  virtual PackedState packed_state() const { return {}; }
  // Called instead of prepare() when an engine file holds a state for this node: adopt `state` (its
  // blobs may view a read-only mapping: keep the tensors, never copy what can be viewed). Returns false
  // when the layout or the blobs' types and shapes are not exactly what this kernel would pack for
  // `ctx`, and the Session then refuses the engine. A constant input whose reads_constant_input() is
  // false may be absent from `ctx.input_values` (the engine did not store it).
  virtual bool restore_packed_state(const InferContext& ctx, const PackedState& state) {
    (void)ctx;
    (void)state;
    return false;
  }
  // False when run() never reads constant input `i` once prepared or restored (its packed copy is used
  // instead): the Session then frees that weight if no other node reads it. Asked after prepare().
  virtual bool reads_constant_input(std::size_t i) const {
    (void)i;
    return true;
  }
  // The packed state built from the int8 codes behind constant input `i` (see QuantizedConstant), for
  // engine files that keep weights as int8: restoring it must give exactly what prepare() packed from
  // the dequantized floats. Empty (the default) when the kernel cannot, and packed_state() is stored.
  virtual PackedState packed_state_from_codes(std::size_t i, const QuantizedConstant& q) const {
    (void)i;
    (void)q;
    return {};
  }
};

using KernelFactory = std::function<std::unique_ptr<Kernel>(const onnx::Node& node, int opset)>;

// Operator type -> factory, by domain and the opset version the implementation starts from.
class KernelRegistry {
 public:
  // The registry with every built-in kernel.
  static const KernelRegistry& builtin();

  void add(const std::string& domain, const std::string& op_type, int since_version, KernelFactory factory);
  // The factory for the highest since_version <= opset; nullptr when none.
  const KernelFactory* find(const std::string& domain, const std::string& op_type, int opset) const;
  std::vector<std::string> op_types(const std::string& domain = "") const;

 private:
  std::map<std::pair<std::string, std::string>, std::map<int, KernelFactory>> factories_;
};

}  // namespace detrq::runtime
