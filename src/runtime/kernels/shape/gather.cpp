// Gather (whole slices picked by index along an axis) and GatherElements (one element per index).
#include <cstring>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

// Index `i` (negative counts from the back) into a dimension of size `n`, refusing out-of-range ones.
inline int64_t resolve_index(const onnx::Node& node, int64_t i, int64_t n) {
  if (i < -n || i >= n) {
    throw_invalid(node.describe(), "index " + std::to_string(i) + " is out of range for a dimension of size " + std::to_string(n));
  }
  return i < 0 ? i + n : i;
}

template <typename I>
int64_t index_at(const Tensor& t, int64_t k) {
  return static_cast<int64_t>(cdata<I>(t)[k]);
}

class GatherKernel final : public Kernel {
 public:
  explicit GatherKernel(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 2, 2);
    const TensorType& data = ctx.input_types[0];
    require_dtype(node_, "indices", ctx.input_types[1].dtype, {DType::kInt64, DType::kInt32});
    axis_ = normalize_axis(node_, node_.attr_int("axis", 0), static_cast<int64_t>(data.shape.size()));
    Shape out(data.shape.begin(), data.shape.begin() + axis_);
    out.insert(out.end(), ctx.input_types[1].shape.begin(), ctx.input_types[1].shape.end());
    out.insert(out.end(), data.shape.begin() + axis_ + 1, data.shape.end());
    index_count_ = core::shape_numel(ctx.input_types[1].shape);
    return {TensorType{data.dtype, out}};
  }

  void run(RunContext& ctx) override {
    const Tensor& data = *ctx.inputs[0];
    const Tensor& indices = *ctx.inputs[1];
    Tensor& out = *ctx.outputs[0];
    if (out.numel() == 0) return;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis_; ++d) outer *= data.dim(static_cast<int>(d));
    for (int d = static_cast<int>(axis_) + 1; d < data.rank(); ++d) inner *= data.dim(d);
    const int64_t n = data.dim(static_cast<int>(axis_));
    const int64_t count = indices.numel();
    // Resolve every index once (the check cannot be skipped: a bad index must not read out of bounds),
    // into the scratch.
    int64_t* idx = ScratchLayout(ctx.scratch).take<int64_t>(static_cast<std::size_t>(count));
    for (int64_t k = 0; k < count; ++k) {
      const int64_t raw = indices.dtype() == DType::kInt64 ? index_at<int64_t>(indices, k) : index_at<int32_t>(indices, k);
      idx[k] = resolve_index(node_, raw, n);
    }
    const std::size_t block = static_cast<std::size_t>(inner) * core::dtype_size(data.dtype());
    const auto* src = static_cast<const uint8_t*>(data.raw_data());
    auto* dst = static_cast<uint8_t*>(out.raw_data());
    const int64_t grain = std::max<int64_t>(1, 65536 / static_cast<int64_t>(std::max<std::size_t>(block, 1)));
    ctx.pool.parallel_for(outer * count, grain, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) {
        const int64_t o = j / count;
        const int64_t k = j % count;
        std::memcpy(dst + static_cast<std::size_t>(j) * block,
                    src + static_cast<std::size_t>(o * n + idx[k]) * block, block);
      }
    });
  }

 private:
  std::size_t scratch_bytes(int threads) const override {
    (void)threads;
    ScratchLayout layout;
    layout.take<int64_t>(static_cast<std::size_t>(index_count_));
    return layout.bytes();
  }

  onnx::Node node_;
  int64_t axis_ = 0;
  int64_t index_count_ = 0;
};

class GatherElementsKernel final : public Kernel {
 public:
  explicit GatherElementsKernel(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 2, 2);
    const TensorType& data = ctx.input_types[0];
    const TensorType& indices = ctx.input_types[1];
    require_dtype(node_, "indices", indices.dtype, {DType::kInt64, DType::kInt32});
    if (indices.shape.size() != data.shape.size()) {
      throw_invalid(node_.describe(), "indices rank " + std::to_string(indices.shape.size()) + " differs from data rank " +
                                          std::to_string(data.shape.size()));
    }
    axis_ = normalize_axis(node_, node_.attr_int("axis", 0), static_cast<int64_t>(data.shape.size()));
    for (std::size_t d = 0; d < data.shape.size(); ++d) {
      if (static_cast<int64_t>(d) != axis_ && indices.shape[d] > data.shape[d]) {
        throw_invalid(node_.describe(), "indices shape " + core::shape_to_string(indices.shape) + " exceeds data shape " +
                                            core::shape_to_string(data.shape) + " outside the axis");
      }
    }
    data_strides_ = contiguous_strides(data.shape);
    return {TensorType{data.dtype, indices.shape}};
  }

  void run(RunContext& ctx) override {
    const Tensor& data = *ctx.inputs[0];
    const Tensor& indices = *ctx.inputs[1];
    Tensor& out = *ctx.outputs[0];
    if (out.numel() == 0) return;
    dispatch_by_size(data.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if (indices.dtype() == DType::kInt64) {
        gather<T, int64_t>(data, indices, out, ctx.pool);
      } else {
        gather<T, int32_t>(data, indices, out, ctx.pool);
      }
    });
  }

 private:
  template <typename T, typename I>
  void gather(const Tensor& data, const Tensor& indices, Tensor& out, core::ThreadPool& pool) const {
    const Shape& shape = indices.shape();
    const std::vector<int64_t>& dstrides = data_strides_;
    const auto rank = shape.size();
    const auto axis = static_cast<std::size_t>(axis_);
    const int64_t n = data.shape()[axis];
    const int64_t inner = shape.back();
    const int64_t rows = indices.numel() / inner;
    const T* src = cdata<T>(data);
    const I* ind = cdata<I>(indices);
    T* dst = mdata<T>(out);
    pool.parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        // Data offset of row r with the axis coordinate left out.
        int64_t base = 0, rest = r;
        for (std::size_t d = rank - 1; d-- > 0;) {
          const int64_t i = rest % shape[d];
          rest /= shape[d];
          if (d != axis) base += i * dstrides[d];
        }
        const int64_t last_stride = dstrides[rank - 1];
        for (int64_t j = 0; j < inner; ++j) {
          const int64_t flat = r * inner + j;
          const int64_t k = resolve_index(node_, static_cast<int64_t>(ind[flat]), n);
          if (axis == rank - 1) {
            dst[flat] = src[base + k * last_stride];
          } else {
            dst[flat] = src[base + j * last_stride + k * dstrides[axis]];
          }
        }
      }
    });
  }

  onnx::Node node_;
  int64_t axis_ = 0;
  std::vector<int64_t> data_strides_;  // contiguous element strides of the data
};

}  // namespace

void register_gather_kernels(KernelRegistry& registry) {
  registry.add("", "Gather", 1, [](const onnx::Node& node, int) { return std::make_unique<GatherKernel>(node); });
  registry.add("", "GatherElements", 11,
               [](const onnx::Node& node, int) { return std::make_unique<GatherElementsKernel>(node); });
}

}  // namespace detrq::runtime::kernels
