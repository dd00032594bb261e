// Gemm: Y = alpha * op(A) * op(B) + beta * C, with transA/transB and C broadcast to [M, N].
// float32 takes the packed fast path (a constant B is packed at load); float64 and the integer
// types the spec allows use the reference loops.
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/gemm/gemm.h"

namespace detrq::runtime::kernels {
namespace {

class GemmKernel final : public Kernel {
 public:
  GemmKernel(const onnx::Node& node, int opset)
      : node_(node),
        opset_(opset),
        alpha_(node.attr_float("alpha", 1.0F)),
        beta_(node.attr_float("beta", 1.0F)),
        trans_a_(node.attr_int("transA", 0) != 0),
        trans_b_(node.attr_int("transB", 0) != 0) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 2);
    const TensorType& a = ctx.input_types[0];
    const TensorType& b = ctx.input_types[1];
    require_dtype(node_, a,
                  {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64, DType::kUInt32, DType::kUInt64},
                  "input A");
    if (b.dtype != a.dtype) fail_node(node_, "A and B have different dtypes");
    if (a.shape.size() != 2 || b.shape.size() != 2) {
      fail_node(node_, "Gemm needs 2-D A and B, got " + shape_to_string(a.shape) + " and " + shape_to_string(b.shape),
                "use MatMul for batched products");
    }
    m_ = trans_a_ ? a.shape[1] : a.shape[0];
    k_ = trans_a_ ? a.shape[0] : a.shape[1];
    const int64_t kb = trans_b_ ? b.shape[1] : b.shape[0];
    n_ = trans_b_ ? b.shape[0] : b.shape[1];
    if (kb != k_) {
      fail_node(node_, "inner dimensions differ: op(A) is " + std::to_string(m_) + "x" + std::to_string(k_) +
                           ", op(B) is " + std::to_string(kb) + "x" + std::to_string(n_));
    }
    has_c_ = ctx.input_present(2);
    if (has_c_) {
      const TensorType& c = ctx.input_types[2];
      if (c.dtype != a.dtype) fail_node(node_, "C has a different dtype than A");
      if (c.shape.size() > 2) fail_node(node_, "C must have rank <= 2, got " + shape_to_string(c.shape));
      c_shape_ = c.shape;
      while (c_shape_.size() < 2) c_shape_.insert(c_shape_.begin(), 1);
      if ((c_shape_[0] != 1 && c_shape_[0] != m_) || (c_shape_[1] != 1 && c_shape_[1] != n_)) {
        fail_node(node_, "C of shape " + shape_to_string(c.shape) + " does not broadcast to [" + std::to_string(m_) +
                             ", " + std::to_string(n_) + "]");
      }
    } else if (opset_ < 11) {
      fail_node(node_, "input C is required before opset 11");
    }
    return {TensorType{a.dtype, {m_, n_}}};
  }

  void prepare(const InferContext& ctx) override {
    const Tensor* b = ctx.input_values.size() > 1 ? ctx.input_values[1] : nullptr;
    if (!b || b->dtype() != DType::kFloat32) return;
    packed_.pack(k_, n_, b_view<float>(b->data<float>()));
    weights_packed_ = true;
  }

  void run(RunContext& ctx) override {
    switch (ctx.inputs[0]->dtype()) {
      case DType::kFloat32: run_typed<float>(ctx); break;
      case DType::kFloat64: run_typed<double>(ctx); break;
      case DType::kInt32: run_typed<int32_t>(ctx); break;
      case DType::kInt64: run_typed<int64_t>(ctx); break;
      case DType::kUInt32: run_typed<uint32_t>(ctx); break;
      case DType::kUInt64: run_typed<uint64_t>(ctx); break;
      default: unsupported_node(node_, "dtype not supported");
    }
  }

 private:
  template <typename T>
  MatrixView<T> a_view(const T* a) const {
    return trans_a_ ? MatrixView<T>{a, 1, m_} : MatrixView<T>{a, k_, 1};
  }
  template <typename T>
  MatrixView<T> b_view(const T* b) const {
    return trans_b_ ? MatrixView<T>{b, 1, k_} : MatrixView<T>{b, n_, 1};
  }

  template <typename T>
  void run_typed(RunContext& ctx) {
    T* y = ctx.outputs[0]->template data<T>();
    if (m_ * n_ == 0) return;
    const bool accumulate = has_c_ && beta_ != 0.0F;
    if (accumulate) {
      const T* c = ctx.inputs[2]->template data<T>();
      const T beta = static_cast<T>(beta_);
      for (int64_t i = 0; i < m_; ++i) {
        for (int64_t j = 0; j < n_; ++j) {
          y[i * n_ + j] = beta * c[(c_shape_[0] == 1 ? 0 : i) * c_shape_[1] + (c_shape_[1] == 1 ? 0 : j)];
        }
      }
    }
    const T* a = ctx.inputs[0]->template data<T>();
    const T* b = weights_packed_ ? nullptr : ctx.inputs[1]->template data<T>();  // packed B may be released
    if constexpr (std::is_same_v<T, float>) {
      if (!weights_packed_) packed_.pack(k_, n_, b_view<float>(b), nullptr, depth_block_per_run(k_));
      const SgemmItem item{a_view<float>(a), &packed_, y};
      sgemm_packed(m_, n_, k_, alpha_, accumulate, std::span<const SgemmItem>(&item, 1), n_, &ctx.pool, ctx.target);
    } else {
      gemm_reference<T>(m_, n_, k_, static_cast<T>(alpha_), a_view<T>(a), b_view<T>(b), accumulate, y, n_);
    }
  }

  // Engine files: the packed B as one blob of floats.
  PackedState packed_state() const override {
    if (!weights_packed_) return {};
    const std::span<const float> data = packed_.packed_data();
    return {PackedMatrixB::layout(),
            {Tensor::view(DType::kFloat32, {static_cast<int64_t>(data.size())}, const_cast<float*>(data.data()))},
            {}};  // the panels are the same for every micro-kernel
  }

  bool restore_packed_state(const InferContext& ctx, const PackedState& state) override {
    if (ctx.input_types.size() < 2 || ctx.input_types[1].dtype != DType::kFloat32 ||
        !restore_packed_b(state, k_, n_, packed_)) {
      return false;
    }
    weights_packed_ = true;
    return true;
  }

  PackedState packed_state_from_codes(std::size_t i, const QuantizedConstant& q) const override {
    if (i != 1 || !weights_packed_) return {};
    // B is [K, N], or [N, K] with transB: its columns are axis 1, or 0.
    return packed_codes_state(q, k_, n_, trans_b_ ? 0 : 1, !trans_b_);
  }

  bool reads_constant_input(std::size_t i) const override { return !(i == 1 && weights_packed_); }

  onnx::Node node_;
  int opset_;
  float alpha_, beta_;
  bool trans_a_, trans_b_;
  int64_t m_ = 0, n_ = 0, k_ = 0;
  bool has_c_ = false;
  Shape c_shape_;
  PackedMatrixB packed_;
  bool weights_packed_ = false;
};

}  // namespace

std::unique_ptr<Kernel> make_gemm_kernel(const onnx::Node& node, int opset) {
  return std::make_unique<GemmKernel>(node, opset);
}

}  // namespace detrq::runtime::kernels
