// Where: picks X where the condition holds, else Y, with three-way numpy broadcasting.
#include <algorithm>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class WhereKernel final : public Kernel {
 public:
  explicit WhereKernel(const onnx::Node& node) : node_(node) {}

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 3, 3);
    require_dtype(node_, "condition", ctx.input_types[0].dtype, {DType::kBool});
    const DType x = ctx.input_types[1].dtype;
    if (ctx.input_types[2].dtype != x) {
      throw_invalid(node_.describe(), std::string("X and Y have different dtypes (") + core::dtype_name(x) + " and " +
                                          core::dtype_name(ctx.input_types[2].dtype) + ")");
    }
    std::vector<Shape> shapes{ctx.input_types[0].shape, ctx.input_types[1].shape, ctx.input_types[2].shape};
    const Shape out = broadcast_shapes(node_, shapes);
    plan_ = BroadcastPlan(out, shapes);
    dispatch_by_size(x, node_, [](auto) {});  // refuses unsupported dtypes now rather than at run
    return {TensorType{x, out}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    if (out.numel() == 0) return;
    dispatch_by_size(out.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      loop(cdata<bool>(*ctx.inputs[0]), cdata<T>(*ctx.inputs[1]), cdata<T>(*ctx.inputs[2]), mdata<T>(out), ctx.pool);
    });
  }

 private:
  template <typename T>
  void loop(const bool* c, const T* x, const T* y, T* o, core::ThreadPool& pool) const {
    const int64_t inner = plan_.inner();
    const int64_t sc = plan_.inner_step(0), sx = plan_.inner_step(1), sy = plan_.inner_step(2);
    auto row = [&](const bool* pc, const T* px, const T* py, T* po, int64_t n) {
      if (sc && sx && sy) {
        for (int64_t i = 0; i < n; ++i) po[i] = pc[i] ? px[i] : py[i];
      } else if (sc && !sx && sy) {  // masked fill with a scalar, the common case in DETR graphs
        const T xv = px[0];
        for (int64_t i = 0; i < n; ++i) po[i] = pc[i] ? xv : py[i];
      } else if (sc && sx && !sy) {
        const T yv = py[0];
        for (int64_t i = 0; i < n; ++i) po[i] = pc[i] ? px[i] : yv;
      } else {
        for (int64_t i = 0; i < n; ++i) po[i] = pc[i * sc] ? px[i * sx] : py[i * sy];
      }
    };
    if (plan_.rows() == 1) {
      pool.parallel_for(inner, kElementwiseGrain, [&](int64_t b, int64_t e) {
        row(c + b * sc, x + b * sx, y + b * sy, o + b, e - b);
      });
      return;
    }
    const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(inner, 1));
    pool.parallel_for(plan_.rows(), grain, [&](int64_t b, int64_t e) {
      int64_t off[3];
      for (int64_t r = b; r < e; ++r) {
        plan_.row_offsets(r, off);
        row(c + off[0], x + off[1], y + off[2], o + r * inner, inner);
      }
    });
  }

  onnx::Node node_;
  BroadcastPlan plan_{Shape{}, {}};
};

}  // namespace

void register_where_kernel(KernelRegistry& registry) {
  registry.add("", "Where", 9, [](const onnx::Node& node, int) { return std::make_unique<WhereKernel>(node); });
}

}  // namespace detrq::runtime::kernels
