// MatMul: numpy-style matrix product (N-d batches with broadcasting, 1-D operands promoted and their
// axis removed). float32 takes the packed fast path; constant right-hand sides are packed at load.
#include <memory>

#include "runtime/kernels/compute_kernels.h"
#include "runtime/kernels/compute_util.h"
#include "runtime/kernels/gemm.h"

namespace detrq::runtime::kernels {
namespace {

// Shapes of one MatMul after promotion of 1-D operands and broadcasting of the batch dimensions.
struct MatMulGeometry {
  int64_t m = 1, n = 1, k = 1;
  Shape batch;                 // broadcast batch shape
  std::vector<int64_t> a_index, b_index;  // per flat batch index: which A / B matrix it reads
  Shape out;
  bool a_batch_foldable = false;  // B is one matrix and A is contiguous: fold A's batch into M
};

MatMulGeometry matmul_geometry(const onnx::Node& node, Shape a, Shape b) {
  if (a.empty() || b.empty()) fail_node(node, "MatMul operands must have rank >= 1");
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);
  if (b_vec) b.push_back(1);
  MatMulGeometry g;
  g.m = a[a.size() - 2];
  g.k = a[a.size() - 1];
  g.n = b[b.size() - 1];
  if (b[b.size() - 2] != g.k) {
    fail_node(node, "inner dimensions differ: " + shape_to_string(a) + " x " + shape_to_string(b),
              "the last axis of A must equal the second-to-last axis of B");
  }
  const Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  const std::size_t rank = std::max(ab.size(), bb.size());
  g.batch.assign(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const int64_t da = i + ab.size() >= rank ? ab[i + ab.size() - rank] : 1;
    const int64_t db = i + bb.size() >= rank ? bb[i + bb.size() - rank] : 1;
    if (da != db && da != 1 && db != 1) {
      fail_node(node, "batch dimensions do not broadcast: " + shape_to_string(a) + " x " + shape_to_string(b));
    }
    g.batch[i] = da == 1 ? db : da;
  }
  const int64_t count = shape_numel(g.batch);
  g.a_index.resize(static_cast<std::size_t>(count));
  g.b_index.resize(static_cast<std::size_t>(count));
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t rem = flat, ai = 0, bi = 0, a_mul = 1, b_mul = 1;
    for (std::size_t d = rank; d-- > 0;) {
      const int64_t idx = rem % g.batch[d];
      rem /= g.batch[d];
      const std::size_t oa = d + ab.size(), ob = d + bb.size();
      if (oa >= rank) {
        const int64_t dim = ab[oa - rank];
        ai += (dim == 1 ? 0 : idx) * a_mul;
        a_mul *= dim;
      }
      if (ob >= rank) {
        const int64_t dim = bb[ob - rank];
        bi += (dim == 1 ? 0 : idx) * b_mul;
        b_mul *= dim;
      }
    }
    g.a_index[static_cast<std::size_t>(flat)] = ai;
    g.b_index[static_cast<std::size_t>(flat)] = bi;
  }
  g.a_batch_foldable = shape_numel(Shape(bb)) == 1 && shape_numel(Shape(ab)) == count;
  g.out = g.batch;
  if (!a_vec) g.out.push_back(g.m);
  if (!b_vec) g.out.push_back(g.n);
  return g;
}

template <typename T>
void matmul_reference(const MatMulGeometry& g, const T* a, const T* b, T* c) {
  const int64_t count = static_cast<int64_t>(g.a_index.size());
  for (int64_t i = 0; i < count; ++i) {
    const MatrixView<T> av{a + g.a_index[static_cast<std::size_t>(i)] * g.m * g.k, g.k, 1};
    const MatrixView<T> bv{b + g.b_index[static_cast<std::size_t>(i)] * g.k * g.n, g.n, 1};
    gemm_reference<T>(g.m, g.n, g.k, T(1), av, bv, false, c + i * g.m * g.n, g.n);
  }
}

// MatMul, and com.detrq FusedMatMul (runtime/fusion.h): the same product followed by a bias per
// column (input 2) and an optional activation, applied by the GEMM to each finished tile.
class MatMulKernel final : public Kernel {
 public:
  MatMulKernel(const onnx::Node& node, bool fused) : node_(node), fused_(fused) {
    if (!fused) return;
    const std::string activation = node.attr_string("activation", "");
    if (activation == "gelu_erf") {
      epilogue_.activation = GemmActivation::kGeluErf;
    } else if (!activation.empty()) {
      unsupported_node(node_, "activation '" + activation + "' is not supported", "known: gelu_erf");
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, fused_ ? 3 : 2);
    const TensorType& a = ctx.input_types[0];
    const TensorType& b = ctx.input_types[1];
    if (fused_) {
      if (a.dtype != DType::kFloat32 || b.dtype != DType::kFloat32 || b.shape.size() != 2 ||
          ctx.input_types[2].dtype != DType::kFloat32 || ctx.input_types[2].shape != Shape{b.shape[1]}) {
        fail_node(node_, "FusedMatMul needs float32 A, a 2-D float32 B [K, N] and a float32 bias [N]");
      }
    }
    require_dtype(node_, a,
                  {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64, DType::kUInt32, DType::kUInt64},
                  "input A");
    if (b.dtype != a.dtype) {
      fail_node(node_, std::string("A is ") + core::dtype_name(a.dtype) + " but B is " + core::dtype_name(b.dtype));
    }
    geometry_ = matmul_geometry(node_, a.shape, b.shape);
    return {TensorType{a.dtype, geometry_.out}};
  }

  void prepare(const InferContext& ctx) override {
    const Tensor* b = ctx.input_values.size() > 1 ? ctx.input_values[1] : nullptr;
    if (!b || b->dtype() != DType::kFloat32 || shape_numel(geometry_.out) == 0) return;
    pack_b(b->data<float>(), packed_);
    weights_packed_ = true;
  }

  void run(RunContext& ctx) override {
    const Tensor& a = *ctx.inputs[0];
    const Tensor& b = *ctx.inputs[1];
    Tensor& c = *ctx.outputs[0];
    if (c.numel() == 0) return;
    switch (a.dtype()) {
      case DType::kFloat32:
        epilogue_.bias = fused_ ? ctx.inputs[2]->data<float>() : nullptr;
        run_float(a.data<float>(), b.data<float>(), c.data<float>(), ctx.pool);
        break;
      case DType::kFloat64: matmul_reference(geometry_, a.data<double>(), b.data<double>(), c.data<double>()); break;
      case DType::kInt32: matmul_reference(geometry_, a.data<int32_t>(), b.data<int32_t>(), c.data<int32_t>()); break;
      case DType::kInt64: matmul_reference(geometry_, a.data<int64_t>(), b.data<int64_t>(), c.data<int64_t>()); break;
      case DType::kUInt32:
        matmul_reference(geometry_, a.data<uint32_t>(), b.data<uint32_t>(), c.data<uint32_t>());
        break;
      case DType::kUInt64:
        matmul_reference(geometry_, a.data<uint64_t>(), b.data<uint64_t>(), c.data<uint64_t>());
        break;
      default: unsupported_node(node_, "dtype not supported");
    }
  }

 private:
  // Packs every distinct B matrix (one for a 2-D B, one per batch entry otherwise).
  void pack_b(const float* b, std::vector<PackedMatrixB>& out) {
    const int64_t distinct = geometry_.b_index.empty()
                                 ? 1
                                 : *std::max_element(geometry_.b_index.begin(), geometry_.b_index.end()) + 1;
    out.resize(static_cast<std::size_t>(distinct));
    for (int64_t i = 0; i < distinct; ++i) {
      out[static_cast<std::size_t>(i)].pack(geometry_.k, geometry_.n,
                                            MatrixView<float>{b + i * geometry_.k * geometry_.n, geometry_.n, 1});
    }
  }

  void run_float(const float* a, const float* b, float* c, core::ThreadPool& pool) {
    const MatMulGeometry& g = geometry_;
    // Activations on the right are packed every run into storage of the calling thread, shared by every
    // MatMul it runs (kept per kernel, attention products alone would hold tens of megabytes).
    thread_local std::vector<PackedMatrixB> activation_packs;
    std::vector<PackedMatrixB>& packed = weights_packed_ ? packed_ : activation_packs;
    if (!weights_packed_) {
      const int64_t distinct = *std::max_element(g.b_index.begin(), g.b_index.end()) + 1;
      if (activation_packs.size() < static_cast<std::size_t>(distinct)) {
        activation_packs.resize(static_cast<std::size_t>(distinct));
      }
      if (distinct == 1) {
        packed[0].pack(g.k, g.n, MatrixView<float>{b, g.n, 1}, &pool);
      } else {
        pool.parallel_for(distinct, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            packed[static_cast<std::size_t>(i)].pack(g.k, g.n, MatrixView<float>{b + i * g.k * g.n, g.n, 1});
          }
        });
      }
    }
    if (g.a_batch_foldable) {
      const SgemmItem item{MatrixView<float>{a, g.k, 1}, &packed[0], c, epilogue_};
      sgemm_packed(g.m * static_cast<int64_t>(g.a_index.size()), g.n, g.k, 1.0F, false,
                   std::span<const SgemmItem>(&item, 1), g.n, &pool);
      return;
    }
    items_.resize(g.a_index.size());
    for (std::size_t i = 0; i < items_.size(); ++i) {
      items_[i] = SgemmItem{MatrixView<float>{a + g.a_index[i] * g.m * g.k, g.k, 1},
                            &packed[static_cast<std::size_t>(g.b_index[i])],
                            c + static_cast<int64_t>(i) * g.m * g.n, epilogue_};
    }
    sgemm_packed(g.m, g.n, g.k, 1.0F, false, items_, g.n, &pool);
  }

  onnx::Node node_;
  bool fused_ = false;
  GemmEpilogue epilogue_;
  MatMulGeometry geometry_;
  std::vector<PackedMatrixB> packed_;
  bool weights_packed_ = false;
  std::vector<SgemmItem> items_;
};

}  // namespace

std::unique_ptr<Kernel> make_matmul_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<MatMulKernel>(node, false);
}

std::unique_ptr<Kernel> make_fused_matmul_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<MatMulKernel>(node, true);
}

}  // namespace detrq::runtime::kernels
