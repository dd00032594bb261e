// Weight pre-quantization (see prequantize.h): the CPU engine's pass over the model it stores, through
// the same QuantizeLinear folding loop as the Session's fold-weight-quantization pass.
#include "detrq/engine/cpu/prequantize.h"

#include <set>

#include "detrq/onnx/graph_editor.h"
#include "runtime/passes/constant_quantize.h"

namespace detrq::engine::cpu {

PrequantizeSummary prequantize_weights(onnx::Model& model) {
  PrequantizeSummary summary;
  onnx::GraphEditor g(model.graph);
  // Every constant QuantizeLinear folds, whoever reads it: the engine stores codes, not floats.
  const auto folded = runtime::passes::fold_constant_quantize(
      g, [](const onnx::Node&, const runtime::passes::ConstantQuantize&) { return true; });
  std::set<std::string> sources;
  for (const auto& f : folded) {
    summary.folded += 1;
    summary.bytes_after += g.initializer(f.output)->nbytes();
    sources.insert(f.source);
  }
  // Drop the float weights that nothing reads any more.
  for (const auto& name : sources) {
    const core::Tensor* t = g.initializer(name);
    if (!t || !g.consumers(name).empty() || g.is_graph_output(name)) continue;
    summary.bytes_before += t->nbytes();
    g.erase_initializer(name);
  }
  return summary;
}

}  // namespace detrq::engine::cpu
