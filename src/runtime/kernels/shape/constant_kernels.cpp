// Constant (every value attribute form but strings and sparse tensors) and ConstantOfShape.
#include <cstring>

#include "runtime/kernels/basic_kernels.h"
#include "runtime/kernels/kernel_support.h"

namespace detrq::runtime::kernels {
namespace {

class ConstantKernel final : public Kernel {
 public:
  explicit ConstantKernel(const onnx::Node& node) : node_(node) {
    int forms = 0;
    for (const auto& [key, attr] : node.attributes) {
      (void)attr;
      if (key.rfind("value", 0) == 0 || key == "sparse_value") ++forms;
    }
    if (forms != 1) throw_invalid(node.describe(), "needs exactly one value attribute, has " + std::to_string(forms));
    if (const onnx::Attribute* a = find_attr(node, "value", onnx::Attribute::Kind::kTensor)) {
      value_ = a->t;
    } else if (const onnx::Attribute* f = find_attr(node, "value_float", onnx::Attribute::Kind::kFloat)) {
      value_ = Tensor::scalar<float>(f->f);
    } else if (const onnx::Attribute* fs = find_attr(node, "value_floats", onnx::Attribute::Kind::kFloats)) {
      value_ = Tensor::from_vector<float>({static_cast<int64_t>(fs->floats.size())}, fs->floats);
    } else if (const onnx::Attribute* i = find_attr(node, "value_int", onnx::Attribute::Kind::kInt)) {
      value_ = Tensor::scalar<int64_t>(i->i);
    } else if (const onnx::Attribute* is = find_attr(node, "value_ints", onnx::Attribute::Kind::kInts)) {
      value_ = Tensor::from_vector<int64_t>({static_cast<int64_t>(is->ints.size())}, is->ints);
    } else {
      throw_unsupported(node.describe(), "string and sparse constants are not supported");
    }
    if (!value_.defined() || core::dtype_size(value_.dtype()) == 0) {
      throw_unsupported(node.describe(), std::string("constant of dtype ") + core::dtype_name(value_.dtype()) + " is not supported");
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 0, 0);
    return {TensorType{value_.dtype(), value_.shape()}};
  }

  void run(RunContext& ctx) override {
    if (value_.nbytes()) std::memcpy(ctx.outputs[0]->raw_data(), value_.raw_data(), value_.nbytes());
  }

 private:
  onnx::Node node_;
  Tensor value_;
};

class ConstantOfShapeKernel final : public Kernel {
 public:
  explicit ConstantOfShapeKernel(const onnx::Node& node) : node_(node) {
    if (const onnx::Attribute* a = find_attr(node, "value", onnx::Attribute::Kind::kTensor)) {
      if (a->t.numel() != 1) throw_invalid(node.describe(), "value must hold exactly one element");
      value_ = a->t;
    } else {
      value_ = Tensor::scalar<float>(0.0F);
    }
    if (core::dtype_size(value_.dtype()) == 0) {
      throw_unsupported(node.describe(), std::string("value of dtype ") + core::dtype_name(value_.dtype()) + " is not supported");
    }
  }

  std::vector<TensorType> infer(const InferContext& ctx) override {
    require_input_count(ctx, 1, 1);
    require_dtype(node_, "shape", ctx.input_types[0].dtype, {DType::kInt64});
    Shape shape = read_int_values(node_, require_constant(ctx, 0, "shape"), "shape");
    for (int64_t d : shape) {
      if (d < 0) throw_invalid(node_.describe(), "shape " + core::shape_to_string(shape) + " has a negative dimension");
    }
    return {TensorType{value_.dtype(), shape}};
  }

  void run(RunContext& ctx) override {
    Tensor& out = *ctx.outputs[0];
    const std::size_t esize = core::dtype_size(out.dtype());
    auto* p = static_cast<uint8_t*>(out.raw_data());
    for (int64_t i = 0; i < out.numel(); ++i) std::memcpy(p + static_cast<std::size_t>(i) * esize, value_.raw_data(), esize);
  }

 private:
  onnx::Node node_;
  Tensor value_;
};

}  // namespace

void register_constant_kernels(KernelRegistry& registry) {
  registry.add("", "Constant", 1, [](const onnx::Node& node, int) { return std::make_unique<ConstantKernel>(node); });
  registry.add("", "ConstantOfShape", 9,
               [](const onnx::Node& node, int) { return std::make_unique<ConstantOfShapeKernel>(node); });
}

}  // namespace detrq::runtime::kernels
