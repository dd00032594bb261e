// Operators that only relabel a tensor's shape: Reshape, Flatten, Squeeze, Unsqueeze and Identity. Each
// declares that its output aliases its input, so the Session makes them free; run() copies for callers
// that do not alias.
#include <algorithm>
#include <cstring>
#include <optional>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class ViewKernel : public Kernel {
 public:
  explicit ViewKernel(const onnx::Node& node, int opset) : node_(node), opset_(opset) {}
  bool output_aliases_input() const override { return true; }
  void run(RunContext& ctx) override {
    const Tensor& in = *ctx.inputs[0];
    Tensor& out = *ctx.outputs[0];
    if (out.raw_data() != in.raw_data() && in.nbytes()) std::memcpy(out.raw_data(), in.raw_data(), in.nbytes());
  }

 protected:
  // Axes from the attribute (before `input_since`) or the constant input 1 (from it); nullopt if absent.
  std::optional<std::vector<int64_t>> axes(const InferContext& ctx, int input_since) const {
    if (opset_ < input_since) {
      if (!node_.has_attr("axes")) return std::nullopt;
      return node_.attr_ints("axes", {});
    }
    if (!ctx.input_present(1)) return std::nullopt;
    return read_int_values(node_, require_constant(ctx, 1, "axes"), "axes");
  }
  std::vector<int64_t> normalized_unique(std::vector<int64_t> axes, int64_t rank) const {
    for (int64_t& a : axes) a = normalize_axis(node_, a, rank);
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
      throw_invalid(node_.describe(), "axes contain a duplicate");
    }
    return axes;
  }

  onnx::Node node_;
  int opset_;
};

class ReshapeKernel final : public ViewKernel {
 public:
  using ViewKernel::ViewKernel;
  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 2, 2);
    const Shape& in = ctx.input_types[0].shape;
    std::vector<int64_t> target = read_int_values(node_, require_constant(ctx, 1, "shape"), "shape");
    const bool allow_zero = opset_ >= 14 && node_.attr_int("allowzero", 0) != 0;
    int64_t infer_at = -1;
    int64_t known = 1;
    for (std::size_t i = 0; i < target.size(); ++i) {
      if (target[i] == 0 && !allow_zero) {
        if (i >= in.size()) throw_invalid(node_.describe(), "shape copies dimension " + std::to_string(i) + " (0) from a rank " + std::to_string(in.size()) + " input");
        target[i] = in[i];
      }
      if (target[i] == -1) {
        if (infer_at >= 0) throw_invalid(node_.describe(), "shape has more than one -1");
        infer_at = static_cast<int64_t>(i);
        continue;
      }
      if (target[i] < 0) throw_invalid(node_.describe(), "shape has a negative dimension " + std::to_string(target[i]));
      known *= target[i];
    }
    const int64_t numel = core::shape_numel(in);
    if (infer_at >= 0) {
      if (known == 0 || numel % known != 0) {
        throw_invalid(node_.describe(), "cannot infer -1 reshaping " + core::shape_to_string(in) + " to " + core::shape_to_string(target));
      }
      target[static_cast<std::size_t>(infer_at)] = numel / known;
    } else if (known != numel) {
      throw_invalid(node_.describe(), "cannot reshape " + core::shape_to_string(in) + " (" + std::to_string(numel) +
                                          " elements) to " + core::shape_to_string(target));
    }
    return {TensorType{ctx.input_types[0].dtype, target}};
  }
};

class FlattenKernel final : public ViewKernel {
 public:
  using ViewKernel::ViewKernel;
  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    const Shape& in = ctx.input_types[0].shape;
    const auto rank = static_cast<int64_t>(in.size());
    int64_t axis = node_.attr_int("axis", 1);
    if (axis < -rank || axis > rank) throw_invalid(node_.describe(), "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    if (axis < 0) axis += rank;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? outer : inner) *= in[static_cast<std::size_t>(d)];
    return {TensorType{ctx.input_types[0].dtype, {outer, inner}}};
  }
};

class SqueezeKernel final : public ViewKernel {
 public:
  using ViewKernel::ViewKernel;
  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, opset_ >= 13 ? 2 : 1);
    const Shape& in = ctx.input_types[0].shape;
    const auto given = axes(ctx, 13);
    Shape out;
    if (!given) {
      for (int64_t d : in) if (d != 1) out.push_back(d);
    } else {
      const auto list = normalized_unique(*given, static_cast<int64_t>(in.size()));
      for (std::size_t d = 0; d < in.size(); ++d) {
        if (std::binary_search(list.begin(), list.end(), static_cast<int64_t>(d))) {
          if (in[d] != 1) throw_invalid(node_.describe(), "cannot squeeze axis " + std::to_string(d) + " of size " + std::to_string(in[d]) + " in " + core::shape_to_string(in));
          continue;
        }
        out.push_back(in[d]);
      }
    }
    return {TensorType{ctx.input_types[0].dtype, out}};
  }
};

class UnsqueezeKernel final : public ViewKernel {
 public:
  using ViewKernel::ViewKernel;
  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, opset_ >= 13 ? 2 : 1, opset_ >= 13 ? 2 : 1);
    const Shape& in = ctx.input_types[0].shape;
    const auto given = axes(ctx, 13);
    if (!given) throw_invalid(node_.describe(), "axes are missing");
    const auto rank = static_cast<int64_t>(in.size() + given->size());
    const auto list = normalized_unique(*given, rank);
    Shape out;
    std::size_t next = 0;
    for (int64_t d = 0; d < rank; ++d) {
      if (std::binary_search(list.begin(), list.end(), d)) {
        out.push_back(1);
      } else {
        out.push_back(in[next++]);
      }
    }
    return {TensorType{ctx.input_types[0].dtype, out}};
  }
};

class IdentityKernel final : public ViewKernel {
 public:
  using ViewKernel::ViewKernel;
  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    return {ctx.input_types[0]};
  }
};

template <typename K>
void add(KernelRegistry& registry, const char* op, int since) {
  registry.add("", op, since, [](const onnx::Node& node, int opset) { return std::make_unique<K>(node, opset); });
}

}  // namespace

void register_view_kernels(KernelRegistry& registry) {
  add<ReshapeKernel>(registry, "Reshape", 5);
  add<FlattenKernel>(registry, "Flatten", 1);
  add<SqueezeKernel>(registry, "Squeeze", 1);
  add<UnsqueezeKernel>(registry, "Unsqueeze", 1);
  add<IdentityKernel>(registry, "Identity", 1);
}

}  // namespace detrq::runtime::kernels
