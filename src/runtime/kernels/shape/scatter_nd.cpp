// ScatterND: the data with slices addressed by index tuples replaced by (or, with a reduction, combined
// with) the updates.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class ScatterNDKernel final : public Kernel {
 public:
  explicit ScatterNDKernel(const onnx::Node& node) : node_(node) {
    const std::string reduction = node.attr_string("reduction", "none");
    if (reduction == "none") {
      reduction_ = Reduction::kNone;
    } else if (reduction == "add") {
      reduction_ = Reduction::kAdd;
    } else if (reduction == "mul") {
      reduction_ = Reduction::kMul;
    } else if (reduction == "max") {
      reduction_ = Reduction::kMax;
    } else if (reduction == "min") {
      reduction_ = Reduction::kMin;
    } else {
      throw_invalid(node.describe(), "unknown reduction '" + reduction + "'", "use none, add, mul, max or min");
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 3, 3);
    const TensorType& data = ctx.input_types[0];
    const TensorType& indices = ctx.input_types[1];
    const TensorType& updates = ctx.input_types[2];
    require_dtype(node_, "indices", indices.dtype, {DType::kInt64});
    if (updates.dtype != data.dtype) throw_invalid(node_.describe(), "updates and data have different dtypes");
    if (indices.shape.empty()) throw_invalid(node_.describe(), "indices must have rank >= 1");
    const int64_t k = indices.shape.back();
    if (k < 1 || k > static_cast<int64_t>(data.shape.size())) {
      throw_invalid(node_.describe(), "index tuples of length " + std::to_string(k) + " do not fit data of rank " +
                                          std::to_string(data.shape.size()));
    }
    Shape expected(indices.shape.begin(), indices.shape.end() - 1);
    expected.insert(expected.end(), data.shape.begin() + k, data.shape.end());
    if (expected != updates.shape) {
      throw_invalid(node_.describe(), "updates shape " + core::shape_to_string(updates.shape) + " should be " +
                                          core::shape_to_string(expected));
    }
    data_strides_ = contiguous_strides(data.shape);
    return {data};
  }

  void run(RunContext& ctx) override {
    const Tensor& data = *ctx.inputs[0];
    const Tensor& indices = *ctx.inputs[1];
    const Tensor& updates = *ctx.inputs[2];
    Tensor& out = *ctx.outputs[0];
    if (data.nbytes() && out.raw_data() != data.raw_data()) std::memcpy(out.raw_data(), data.raw_data(), data.nbytes());
    const auto k = static_cast<std::size_t>(indices.shape().back());
    const int64_t tuples = indices.numel() / static_cast<int64_t>(k);
    const std::vector<int64_t>& strides = data_strides_;
    const std::size_t esize = core::dtype_size(data.dtype());
    const std::size_t slice = static_cast<std::size_t>(k == strides.size() ? 1 : strides[k - 1]) * esize;
    const int64_t* ind = cdata<int64_t>(indices);
    const auto* src = static_cast<const uint8_t*>(updates.raw_data());
    auto* dst = static_cast<uint8_t*>(out.raw_data());
    // Sequential: with duplicate indices the last update wins, as in onnxruntime.
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t offset = 0;
      for (std::size_t j = 0; j < k; ++j) {
        const int64_t n = data.shape()[j];
        int64_t i = ind[static_cast<std::size_t>(t) * k + j];
        if (i < -n || i >= n) {
          throw_invalid(node_.describe(), "index " + std::to_string(i) + " is out of range for dimension " +
                                              std::to_string(j) + " of size " + std::to_string(n));
        }
        if (i < 0) i += n;
        offset += i * strides[j];
      }
      uint8_t* to = dst + static_cast<std::size_t>(offset) * esize;
      const uint8_t* from = src + static_cast<std::size_t>(t) * slice;
      if (reduction_ == Reduction::kNone) {
        std::memcpy(to, from, slice);
      } else {
        combine(to, from, static_cast<int64_t>(slice / esize), data.dtype());
      }
    }
  }

 private:
  enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

  void combine(uint8_t* to, const uint8_t* from, int64_t n, DType dtype) const {
    dispatch_all(dtype, node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bool>) {
        throw_unsupported(node_.describe(), "reductions on bool data are not supported");
      } else {
        T* d = reinterpret_cast<T*>(to);
        const T* u = reinterpret_cast<const T*>(from);
        for (int64_t i = 0; i < n; ++i) {
          const auto a = load(d[i]);
          const auto b = load(u[i]);
          switch (reduction_) {
            case Reduction::kAdd: d[i] = store<T>(a + b); break;
            case Reduction::kMul: d[i] = store<T>(a * b); break;
            case Reduction::kMax: d[i] = store<T>(std::max(a, b)); break;
            case Reduction::kMin: d[i] = store<T>(std::min(a, b)); break;
            case Reduction::kNone: break;
          }
        }
      }
    });
  }

  std::vector<int64_t> data_strides_;  // contiguous element strides of the data
  onnx::Node node_;
  Reduction reduction_ = Reduction::kNone;
};

}  // namespace

void register_scatter_nd_kernel(KernelRegistry& registry) {
  registry.add("", "ScatterND", 11, [](const onnx::Node& node, int) { return std::make_unique<ScatterNDKernel>(node); });
}

}  // namespace detrq::runtime::kernels
