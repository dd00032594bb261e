// Small builders shared by the basic kernel tests: nodes with attributes, tensors, value checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/kernel_harness.h"

namespace detrq::testing {

using core::DType;
using core::Shape;
using core::Tensor;

inline onnx::Node make_node(const std::string& op, std::size_t n_inputs = 1, std::size_t n_outputs = 1) {
  onnx::Node node;
  node.name = "n0";
  node.op_type = op;
  // Built with append: g++ 12 warns falsely (-Wrestrict) on "literal" + std::string here.
  for (std::size_t i = 0; i < n_inputs; ++i) node.inputs.push_back(std::string(1, 'x').append(std::to_string(i)));
  for (std::size_t i = 0; i < n_outputs; ++i) node.outputs.push_back(std::string(1, 'y').append(std::to_string(i)));
  return node;
}

inline void set_int(onnx::Node& node, const std::string& key, int64_t v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInt;
  a.i = v;
  node.attributes[key] = a;
}
inline void set_ints(onnx::Node& node, const std::string& key, std::vector<int64_t> v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kInts;
  a.ints = std::move(v);
  node.attributes[key] = a;
}
inline void set_float(onnx::Node& node, const std::string& key, float v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kFloat;
  a.f = v;
  node.attributes[key] = a;
}
inline void set_floats(onnx::Node& node, const std::string& key, std::vector<float> v) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kFloats;
  a.floats = std::move(v);
  node.attributes[key] = a;
}
inline void set_tensor(onnx::Node& node, const std::string& key, Tensor t) {
  onnx::Attribute a;
  a.kind = onnx::Attribute::Kind::kTensor;
  a.t = std::move(t);
  node.attributes[key] = a;
}

template <typename T>
Tensor tensor(Shape shape, std::vector<T> values) {
  return Tensor::from_vector<T>(std::move(shape), values);
}
inline Tensor bools(Shape shape, std::vector<int> values) {
  std::vector<bool> b(values.begin(), values.end());
  Tensor t = Tensor::empty(DType::kBool, std::move(shape));
  for (std::size_t i = 0; i < b.size(); ++i) static_cast<bool*>(t.raw_data())[i] = b[i];
  return t;
}
inline Tensor i64(Shape shape, std::vector<int64_t> values) { return tensor<int64_t>(std::move(shape), std::move(values)); }
inline Tensor f32(Shape shape, std::vector<float> values) { return tensor<float>(std::move(shape), std::move(values)); }

// Runs `node` on `inputs` (as constants when `constant`), returning every output.
inline std::vector<Tensor> run(const onnx::Node& node, std::vector<Tensor> inputs, int opset = 17, bool constant = true) {
  KernelCall call{node, opset, std::move(inputs), constant, 2};
  return run_kernel(call);
}

template <typename T>
void expect_tensor(const Tensor& t, const Shape& shape, const std::vector<T>& values) {
  ASSERT_EQ(t.dtype(), core::DTypeOf<T>::value);
  ASSERT_EQ(t.shape(), shape);
  ASSERT_EQ(static_cast<std::size_t>(t.numel()), values.size());
  const T* p = static_cast<const T*>(t.raw_data());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(values[i])) {
        EXPECT_TRUE(std::isnan(p[i])) << "at " << i;
      } else if (std::isinf(values[i])) {
        EXPECT_EQ(p[i], values[i]) << "at " << i;
      } else {
        EXPECT_NEAR(p[i], values[i], 1e-6 * std::max<double>(1.0, std::fabs(values[i]))) << "at " << i;
      }
    } else {
      EXPECT_EQ(p[i], values[i]) << "at " << i;
    }
  }
}

inline void expect_bools(const Tensor& t, const Shape& shape, const std::vector<int>& values) {
  ASSERT_EQ(t.dtype(), DType::kBool);
  ASSERT_EQ(t.shape(), shape);
  ASSERT_EQ(static_cast<std::size_t>(t.numel()), values.size());
  const bool* p = static_cast<const bool*>(t.raw_data());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(p[i], values[i] != 0) << "at " << i;
}

// Expects `fn` to throw a detrq::Error of `kind` whose message names the node.
template <typename Fn>
void expect_error(Fn&& fn, ErrorKind kind, const std::string& fragment = "'n0'") {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace detrq::testing
