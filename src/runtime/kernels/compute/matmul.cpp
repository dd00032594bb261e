// MatMul: numpy-style matrix product (N-d batches with broadcasting, 1-D operands promoted and their
// axis removed). float32 takes the packed fast path; constant right-hand sides are packed at load.
#include <array>
#include <cmath>
#include <atomic>
#include <memory>

#include "runtime/kernels/compute/compute_kernels.h"
#include "runtime/kernels/compute/permuted_operand.h"
#include "runtime/kernels/gemm/gemm.h"
#include "runtime/kernels/quantization/requantize.h"
#include "runtime/kernels/kernel_support.h"
#include "runtime/kernels/math/vector_math.h"

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

// MatMul, and com.detrq FusedMatMul (runtime/passes/fuse_matmul_epilogue.cpp): the same product followed by a bias per
// column (input 2), an optional activation, an optional scale per column (input 3) and an optional
// residual added last (input 4), applied by the GEMM to each finished tile. A residual of the product's
// shape is added on registers; one that broadcasts (the output then has the broadcast shape) is added
// in a pass after the product.
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
    has_scale_ = has_residual_ = residual_broadcasts_ = false;
    if (fused_) {
      if (a.dtype != DType::kFloat32 || b.dtype != DType::kFloat32 || b.shape.size() != 2 ||
          ctx.input_types[2].dtype != DType::kFloat32 || ctx.input_types[2].shape != Shape{b.shape[1]}) {
        fail_node(node_, "FusedMatMul needs float32 A, a 2-D float32 B [K, N] and a float32 bias [N]");
      }
      has_scale_ = ctx.input_present(3);
      if (has_scale_ && (ctx.input_types[3].dtype != DType::kFloat32 || ctx.input_types[3].shape != Shape{b.shape[1]})) {
        fail_node(node_, "FusedMatMul's scale (input 3) must be float32 [N]");
      }
      has_residual_ = ctx.input_present(4);
      if (has_residual_ && ctx.input_types[4].dtype != DType::kFloat32) {
        fail_node(node_, "FusedMatMul's residual (input 4) must be float32");
      }
    }
    require_dtype(node_, a,
                  {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64, DType::kUInt32, DType::kUInt64},
                  "input A");
    if (b.dtype != a.dtype) {
      fail_node(node_, std::string("A is ") + core::dtype_name(a.dtype) + " but B is " + core::dtype_name(b.dtype));
    }
    geometry_ = matmul_geometry(node_, a.shape, b.shape);
    dtype_ = a.dtype;
    activation_packs_.assign(static_cast<std::size_t>(b_distinct()), PackedMatrixB());
    items_.reserve(geometry_.a_index.size());
    if (has_residual_) {
      const Shape out = broadcast_shapes(node_, {geometry_.out, ctx.input_types[4].shape});
      residual_broadcasts_ = out != geometry_.out || ctx.input_types[4].shape != geometry_.out;
      if (residual_broadcasts_) residual_plan_ = BroadcastPlan(out, {geometry_.out, ctx.input_types[4].shape});
      return {TensorType{a.dtype, out}};
    }
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
        epilogue_.col_scale = has_scale_ ? ctx.inputs[3]->data<float>() : nullptr;
        epilogue_.residual = has_residual_ && !residual_broadcasts_ ? ctx.inputs[4]->data<float>() : nullptr;
        // Packed weights may have been released: B is then an empty tensor.
        if (!residual_broadcasts_) {
          run_float(a.data<float>(), weights_packed_ ? nullptr : b.data<float>(), c.data<float>(), ctx);
        } else {
          float* product = ScratchLayout(ctx.scratch).take<float>(product_floats());
          run_float(a.data<float>(), weights_packed_ ? nullptr : b.data<float>(), product, ctx);
          add_broadcast(product, *ctx.inputs[4], c);
        }
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

  // Scratch (planned into the arena): the product where a residual broadcasts, then, for a computed B,
  // each distinct B packed (kept per kernel, attention products alone would hold tens of megabytes).
  std::size_t product_floats() const {
    return residual_broadcasts_ ? static_cast<std::size_t>(shape_numel(geometry_.out)) : 0;
  }
  std::size_t b_floats() const { return static_cast<std::size_t>(PackedMatrixB::packed_size(geometry_.k, geometry_.n)); }
  int64_t b_distinct() const {
    return geometry_.b_index.empty() ? 1 : *std::max_element(geometry_.b_index.begin(), geometry_.b_index.end()) + 1;
  }
  std::size_t scratch_bytes(int threads) const override {
    (void)threads;
    if (dtype_ != DType::kFloat32 || shape_numel(geometry_.out) == 0) return 0;
    ScratchLayout layout;
    layout.take<float>(product_floats());
    for (int64_t i = 0; !weights_packed_ && i < b_distinct(); ++i) layout.take<float>(b_floats());
    return layout.bytes();
  }

  void run_float(const float* a, const float* b, float* c, RunContext& ctx) {
    const MatMulGeometry& g = geometry_;
    core::ThreadPool& pool = ctx.pool;
    const CpuTarget& target = ctx.target;
    std::vector<PackedMatrixB>& packed = weights_packed_ ? packed_ : activation_packs_;
    if (!weights_packed_) {
      const int64_t distinct = b_distinct();
      ScratchLayout scratch(ctx.scratch);
      scratch.take<float>(product_floats());
      for (PackedMatrixB& p : activation_packs_) p.use_storage(scratch.take<float>(b_floats()), b_floats());
      if (distinct == 1) {
        packed[0].pack(g.k, g.n, MatrixView<float>{b, g.n, 1}, &pool, depth_block_per_run(g.k));
      } else {
        pool.parallel_for(distinct, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            packed[static_cast<std::size_t>(i)].pack(g.k, g.n, MatrixView<float>{b + i * g.k * g.n, g.n, 1}, nullptr,
                                                     depth_block_per_run(g.k));
          }
        });
      }
    }
    if (g.a_batch_foldable) {
      const SgemmItem item{MatrixView<float>{a, g.k, 1}, &packed[0], c, epilogue_};
      sgemm_packed(g.m * static_cast<int64_t>(g.a_index.size()), g.n, g.k, 1.0F, false,
                   std::span<const SgemmItem>(&item, 1), g.n, &pool, target);
      return;
    }
    items_.resize(g.a_index.size());
    for (std::size_t i = 0; i < items_.size(); ++i) {
      items_[i] = SgemmItem{MatrixView<float>{a + g.a_index[i] * g.m * g.k, g.k, 1},
                            &packed[static_cast<std::size_t>(g.b_index[i])],
                            c + static_cast<int64_t>(i) * g.m * g.n, epilogue_};
      if (epilogue_.residual) items_[i].epilogue.residual = epilogue_.residual + static_cast<int64_t>(i) * g.m * g.n;
    }
    sgemm_packed(g.m, g.n, g.k, 1.0F, false, items_, g.n, &pool, target);
  }

  // Engine files: one blob of packed floats per distinct B matrix.
  PackedState packed_state() const override {
    if (!weights_packed_) return {};
    PackedState state{PackedMatrixB::layout(), {}, {}};  // the panels are the same for every micro-kernel
    for (const PackedMatrixB& p : packed_) {
      const std::span<const float> data = p.packed_data();
      state.blobs.push_back(Tensor::view(DType::kFloat32, {static_cast<int64_t>(data.size())},
                                         const_cast<float*>(data.data())));
    }
    return state;
  }

  bool restore_packed_state(const InferContext& ctx, const PackedState& state) override {
    if (ctx.input_types.size() < 2 ||
        ctx.input_types[1].dtype != DType::kFloat32 || shape_numel(geometry_.out) == 0) {
      return false;
    }
    const int64_t distinct = geometry_.b_index.empty()
                                 ? 1
                                 : *std::max_element(geometry_.b_index.begin(), geometry_.b_index.end()) + 1;
    // Float panels: one blob per distinct B. Int8 codes: one B only, three blobs.
    std::vector<PackedState> parts;
    if (state.layout == PackedMatrixB::layout()) {
      if (state.blobs.size() != static_cast<std::size_t>(distinct)) return false;
      for (const Tensor& blob : state.blobs) parts.push_back(PackedState{state.layout, {blob}, state.isa});
    } else {
      if (distinct != 1) return false;
      parts.push_back(state);
    }
    packed_.resize(parts.size());
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (!restore_packed_b(parts[i], geometry_.k, geometry_.n, packed_[i])) return false;
    }
    weights_packed_ = true;
    return true;
  }

  PackedState packed_state_from_codes(std::size_t i, const QuantizedConstant& q) const override {
    if (i != 1 || !weights_packed_ || packed_.size() != 1) return {};
    return packed_codes_state(q, geometry_.k, geometry_.n, q.codes.rank() - 1, true);
  }

  bool reads_constant_input(std::size_t i) const override { return !(i == 1 && weights_packed_); }

  // out = product + residual, both broadcast to out's shape (the rare residual that is not the product's
  // shape), along residual_plan_.
  void add_broadcast(const float* product, const Tensor& residual, Tensor& out) const {
    const BroadcastPlan& plan = residual_plan_;
    const int64_t inner = plan.inner(), sp = plan.inner_step(0), sr = plan.inner_step(1);
    const float* r = residual.data<float>();
    float* y = out.data<float>();
    int64_t offsets[2];
    for (int64_t row = 0; row < plan.rows(); ++row) {
      plan.row_offsets(row, offsets);
      const float* p = product + offsets[0];
      const float* q = r + offsets[1];
      float* yr = y + row * inner;
      for (int64_t j = 0; j < inner; ++j) yr[j] = p[j * sp] + q[j * sr];
    }
  }

  onnx::Node node_;
  bool fused_ = false;
  bool has_scale_ = false, has_residual_ = false, residual_broadcasts_ = false;
  BroadcastPlan residual_plan_{Shape{}, {}};  // where residual_broadcasts_
  GemmEpilogue epilogue_;
  MatMulGeometry geometry_;
  std::vector<PackedMatrixB> packed_;
  bool weights_packed_ = false;
  DType dtype_ = DType::kUndefined;
  std::vector<PackedMatrixB> activation_packs_;  // a computed B's, packing into the scratch
  std::vector<SgemmItem> items_;
};

// com.detrq AttentionSoftmax (runtime/passes/fuse_attention.cpp): Y = softmax(Q x K, last axis) x V, with numpy
// broadcasting of the batch axes as the three nodes it replaces had. Work items are blocks of rows of
// one batch entry: the block's scores are computed into storage of the thread, exponentiated in place
// and multiplied by V while they are still in cache; the softmax division is applied to the product.
class AttentionKernel final : public Kernel {
  static constexpr int64_t kBlockRows = 64;

 public:
  explicit AttentionKernel(const onnx::Node& node)
      : node_(node),
        scale_(node.attr_float("scale", 1.0F)),
        prob_scale_(node.attr_float("prob_scale", 0.0F)),
        prob_zero_point_(static_cast<int32_t>(node.attr_int("prob_zero_point", 0))),
        prob_signed_(node.attr_int("prob_signed", 0) != 0) {
    if (node.has_attr("prob_scale") && !(prob_scale_ > 0.0F && std::isfinite(prob_scale_))) {
      fail_node(node_, "prob_scale must be a positive finite number");
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_inputs(ctx, 3);
    for (std::size_t i = 0; i < 3; ++i) {
      if (ctx.input_types[i].dtype != DType::kFloat32) fail_node(node_, "AttentionSoftmax runs float32 only");
      operands_[i] = permuted_input(node_, ctx.input_types[i].shape, node_.attr_ints(std::string("perm_") + "qkv"[i]));
      if (operands_[i].shape.size() < 2) fail_node(node_, "AttentionSoftmax needs matrices, not vectors");
    }
    scores_ = matmul_geometry(node_, operands_[0].shape, operands_[1].shape);
    output_ = matmul_geometry(node_, scores_.out, operands_[2].shape);
    auto distinct = [](const std::vector<int64_t>& index) { return *std::max_element(index.begin(), index.end()) + 1; };
    operands_[0].offsets = batch_offsets(operands_[0], distinct(scores_.a_index));
    operands_[1].offsets = batch_offsets(operands_[1], distinct(scores_.b_index));
    operands_[2].offsets = batch_offsets(operands_[2], distinct(output_.b_index));
    // Where each entry's rows go: the product [..., m, dv] as is, or permuted by perm_out (a Transpose the
    // fusion absorbed; its last axis stays last).
    const std::vector<int64_t> perm_out = node_.attr_ints("perm_out");
    PermutedOperand out = permuted_output(node_, output_.out, perm_out);
    out_ld_ = out.strides[out.strides.size() - 2];
    out_offsets_ = batch_offsets(out, static_cast<int64_t>(output_.a_index.size()));
    const Shape stored = stored_shape(output_.out, perm_out);
    k_count_ = distinct(scores_.b_index);
    v_count_ = distinct(output_.b_index);
    packs_.assign(static_cast<std::size_t>(k_count_ + v_count_), PackedMatrixB());
    return {TensorType{DType::kFloat32, stored}};
  }

  // Scratch: every distinct K and V packed, then per thread a block of scores (at most kBlockRows rows).
  std::size_t k_floats() const { return static_cast<std::size_t>(PackedMatrixB::packed_size(scores_.k, scores_.n)); }
  std::size_t v_floats() const { return static_cast<std::size_t>(PackedMatrixB::packed_size(output_.k, output_.n)); }
  std::size_t block_floats() const { return static_cast<std::size_t>(kBlockRows * scores_.n); }
  std::size_t scratch_bytes(int threads) const override {
    ScratchLayout layout;
    for (int64_t i = 0; i < k_count_ + v_count_; ++i) layout.take<float>(i < k_count_ ? k_floats() : v_floats());
    layout.take<float>(static_cast<std::size_t>(threads) * block_floats());
    return layout.bytes();
  }

  void run(RunContext& ctx) override {
    const float* q = ctx.inputs[0]->data<float>();
    const float* k = ctx.inputs[1]->data<float>();
    const float* v = ctx.inputs[2]->data<float>();
    float* y = ctx.outputs[0]->data<float>();
    if (ctx.outputs[0]->numel() == 0) return;
    const int64_t m = scores_.m, d = scores_.k, n = scores_.n, dv = output_.n;
    // Pack every distinct K and V matrix once (each is read by every block of rows of its entries), into
    // the scratch, where each thread's block of scores follows.
    const int64_t k_count = k_count_, v_count = v_count_;
    std::vector<PackedMatrixB>& pk = packs_;
    ScratchLayout scratch(ctx.scratch);
    for (int64_t i = 0; i < k_count + v_count; ++i) {
      const std::size_t floats = i < k_count ? k_floats() : v_floats();
      pk[static_cast<std::size_t>(i)].use_storage(scratch.take<float>(floats), floats);
    }
    float* blocks = scratch.take<float>(static_cast<std::size_t>(ctx.pool.size()) * block_floats());
    ctx.pool.parallel_for(k_count + v_count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        if (i < k_count) {
          pk[static_cast<std::size_t>(i)].pack(d, n, matrix(operands_[1], k, i), nullptr, depth_block_per_run(d));
        } else {
          pk[static_cast<std::size_t>(i)].pack(n, dv, matrix(operands_[2], v, i - k_count), nullptr,
                                               depth_block_per_run(n));
        }
      }
    });
    // Blocks of at most kBlockRows rows, so that a block's scores stay in L2, evened out in whole tiles
    // of the micro-kernel (a partial tile costs a full one).
    const int64_t tile = sgemm_tile_rows(ctx.target);
    const int64_t max_rows = std::max<int64_t>(tile, kBlockRows / tile * tile);
    const int64_t fewest_blocks = (m + max_rows - 1) / max_rows;
    const int64_t even = (m + fewest_blocks - 1) / fewest_blocks;
    const int64_t rows_per_block = std::min(max_rows, (even + tile - 1) / tile * tile);
    const int64_t blocks_per_entry = (m + rows_per_block - 1) / rows_per_block;
    const int64_t entries = static_cast<int64_t>(output_.a_index.size());
    const int64_t tasks = entries * blocks_per_entry;
    std::atomic<int64_t> next{0};
    ctx.pool.parallel_for(ctx.pool.size(), 1, [&](int64_t slot, int64_t) {
      float* block = blocks + static_cast<std::size_t>(slot) * block_floats();  // this thread's scores
      for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) {
        const int64_t e = t / blocks_per_entry;
        const int64_t row0 = (t % blocks_per_entry) * rows_per_block;
        const int64_t rows = std::min(rows_per_block, m - row0);
        const int64_t p = output_.a_index[static_cast<std::size_t>(e)];  // which score matrix
        const int64_t qi = scores_.a_index[static_cast<std::size_t>(p)];
        const int64_t ki = scores_.b_index[static_cast<std::size_t>(p)];
        const int64_t vi = output_.b_index[static_cast<std::size_t>(e)];
        MatrixView<float> qv = matrix(operands_[0], q, qi);
        qv.data += row0 * qv.row_stride;
        const SgemmItem s{qv, &pk[static_cast<std::size_t>(ki)], block};
        sgemm_packed(rows, n, d, scale_, false, std::span<const SgemmItem>(&s, 1), n, nullptr, ctx.target);
        // Softmax's division by the row sum is applied to the product's row (dv values) instead of
        // the probabilities (n values): (e / s) V = (e V) / s.
        float sums[kBlockRows];
        for (int64_t r = 0; r < rows; ++r) {
          sums[r] = exp_minus_max_row(block + r * n, block + r * n, n, ctx.target);
        }
        float* out = y + out_offsets_[static_cast<std::size_t>(e)] + row0 * out_ld_;
        if (prob_scale_ > 0.0F) {
          // Quantized probabilities (Q/DQ attention): normalized, then rounded to the code grid as the
          // QuantizeLinear -> DequantizeLinear pair did; the product then needs no division.
          for (int64_t r = 0; r < rows; ++r) {
            fake_quantize_run(block + r * n, prob_signed_, n, 1.0F / sums[r], prob_scale_, prob_zero_point_,
                              ctx.target);
          }
        }
        const SgemmItem o{MatrixView<float>{block, n, 1}, &pk[static_cast<std::size_t>(k_count + vi)], out};
        sgemm_packed(rows, dv, n, 1.0F, false, std::span<const SgemmItem>(&o, 1), out_ld_, nullptr, ctx.target);
        if (prob_scale_ > 0.0F) continue;
        for (int64_t r = 0; r < rows; ++r) {
          const float inv = 1.0F / sums[r];
          for (int64_t j = 0; j < dv; ++j) out[r * out_ld_ + j] *= inv;
        }
      }
    });
  }

 private:
  onnx::Node node_;
  // Q, K or V as the product sees it (permuted_operand.h).
  static MatrixView<float> matrix(const PermutedOperand& o, const float* base, int64_t batch) {
    return MatrixView<float>{base + o.offset(batch), o.row_stride(), o.col_stride()};
  }

  float scale_ = 1.0F;  // of the scores: what the Muls scaling Q and K multiplied together
  // The probabilities' QuantizeLinear (Q/DQ attention, passes/qdq_attention_fusion.cpp); prob_scale_ 0: none.
  float prob_scale_ = 0.0F;
  int32_t prob_zero_point_ = 0;
  bool prob_signed_ = false;
  int64_t out_ld_ = 0;   // output elements between consecutive rows of an entry
  std::vector<int64_t> out_offsets_;  // where each entry's first row starts in the output
  int64_t k_count_ = 0, v_count_ = 0;  // distinct K and V matrices
  std::vector<PackedMatrixB> packs_;   // K's then V's, packing into the scratch
  std::array<PermutedOperand, 3> operands_;
  MatMulGeometry scores_, output_;
};

}  // namespace

std::unique_ptr<Kernel> make_matmul_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<MatMulKernel>(node, false);
}

std::unique_ptr<Kernel> make_fused_matmul_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<MatMulKernel>(node, true);
}

std::unique_ptr<Kernel> make_attention_kernel(const onnx::Node& node, int /*opset*/) {
  return std::make_unique<AttentionKernel>(node);
}

}  // namespace detrq::runtime::kernels
