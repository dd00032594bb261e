// Test-only kernels (Add, Mul, Relu, Reshape, Shape, Gather, Concat on small float/int64 tensors) in a
// registry of their own, so Session tests do not depend on the built-in kernels.
#pragma once

#include <memory>

#include "detrq/core/error.h"
#include "detrq/runtime/kernel.h"

namespace detrq::testing {

using runtime::InferContext;
using runtime::Kernel;
using runtime::RunContext;
using runtime::TensorType;

// Elementwise binary float op; the second input is either the same shape or a single value.
template <typename Op>
class TestBinary : public Kernel {
 public:
  std::vector<TensorType> infer(const InferContext& ctx) override {
    const auto& a = ctx.input_types.at(0);
    const auto& b = ctx.input_types.at(1);
    if (a.dtype != core::DType::kFloat32 || b.dtype != a.dtype) throw_invalid(ctx.node.describe(), "float32 only");
    if (b.shape != a.shape && core::shape_numel(b.shape) != 1) throw_invalid(ctx.node.describe(), "shape mismatch");
    return {a};
  }
  void run(RunContext& ctx) override {
    const float* a = ctx.inputs[0]->data<float>();
    const float* b = ctx.inputs[1]->data<float>();
    const bool scalar = ctx.inputs[1]->numel() == 1;
    float* y = ctx.outputs[0]->data<float>();
    for (int64_t i = 0; i < ctx.outputs[0]->numel(); ++i) y[i] = Op{}(a[i], b[scalar ? 0 : i]);
  }
};

class TestRelu : public Kernel {
 public:
  std::vector<TensorType> infer(const InferContext& ctx) override { return {ctx.input_types.at(0)}; }
  void run(RunContext& ctx) override {
    const float* x = ctx.inputs[0]->data<float>();
    float* y = ctx.outputs[0]->data<float>();
    for (int64_t i = 0; i < ctx.outputs[0]->numel(); ++i) y[i] = x[i] > 0 ? x[i] : 0.0F;
  }
};

// Needs its shape input to be constant (which Session folding guarantees for Shape arithmetic).
class TestReshape : public Kernel {
 public:
  std::vector<TensorType> infer(const InferContext& ctx) override {
    const core::Tensor* shape = ctx.input_values.at(1);
    if (!shape) throw_unsupported(ctx.node.describe(), "test Reshape needs a constant shape");
    core::Shape s(shape->data<int64_t>(), shape->data<int64_t>() + shape->numel());
    if (core::shape_numel(s) != core::shape_numel(ctx.input_types[0].shape)) throw_invalid(ctx.node.describe(), "bad shape");
    return {{ctx.input_types[0].dtype, s}};
  }
  void run(RunContext&) override { throw std::logic_error("an aliasing kernel must not be run"); }
  bool output_aliases_input() const override { return true; }
};

class TestShape : public Kernel {
 public:
  std::vector<TensorType> infer(const InferContext& ctx) override {
    return {{core::DType::kInt64, {static_cast<int64_t>(ctx.input_types.at(0).shape.size())}}};
  }
  void run(RunContext& ctx) override {
    for (int i = 0; i < ctx.inputs[0]->rank(); ++i) ctx.outputs[0]->data<int64_t>()[i] = ctx.inputs[0]->dim(i);
  }
};

// Concat of 1-D int64 tensors.
class TestConcat : public Kernel {
 public:
  std::vector<TensorType> infer(const InferContext& ctx) override {
    int64_t n = 0;
    for (const auto& t : ctx.input_types) n += core::shape_numel(t.shape);
    return {{core::DType::kInt64, {n}}};
  }
  void run(RunContext& ctx) override {
    int64_t* y = ctx.outputs[0]->data<int64_t>();
    for (const core::Tensor* t : ctx.inputs) {
      for (int64_t v : t->span<int64_t>()) *y++ = v;
    }
  }
};

inline runtime::KernelRegistry test_registry() {
  runtime::KernelRegistry r;
  auto add = [&](const char* op, auto make) {
    r.add("", op, 1, [make](const onnx::Node&, int) -> std::unique_ptr<Kernel> { return make(); });
  };
  add("Add", [] { return std::make_unique<TestBinary<std::plus<float>>>(); });
  add("Mul", [] { return std::make_unique<TestBinary<std::multiplies<float>>>(); });
  add("Relu", [] { return std::make_unique<TestRelu>(); });
  add("Reshape", [] { return std::make_unique<TestReshape>(); });
  add("Shape", [] { return std::make_unique<TestShape>(); });
  add("Concat", [] { return std::make_unique<TestConcat>(); });
  return r;
}

}  // namespace detrq::testing
