// Reduction kernels (ReduceSum, ReduceMean, ReduceMax) against hand-computed values.
#include <limits>
#include <numeric>

#include "runtime/basic_kernel_test_util.h"

namespace detrq::testing {
namespace {

TEST(ReduceKernel, AxesFromAttributeAndInput) {
  auto x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  onnx::Node sum = make_node("ReduceSum", 2);
  expect_tensor<float>(run(sum, {x, i64({1}, {1})})[0], {2, 1}, {6, 15});
  set_int(sum, "keepdims", 0);
  expect_tensor<float>(run(sum, {x, i64({1}, {0})})[0], {3}, {5, 7, 9});
  expect_tensor<float>(run(sum, {x})[0], {}, {21});  // no axes: everything
  set_int(sum, "noop_with_empty_axes", 1);
  expect_tensor<float>(run(sum, {x})[0], {2, 3}, {1, 2, 3, 4, 5, 6});

  onnx::Node mean = make_node("ReduceMean");
  set_ints(mean, "axes", {-1});
  expect_tensor<float>(run(mean, {x}, 17)[0], {2, 1}, {2, 5});
  onnx::Node max = make_node("ReduceMax");
  set_ints(max, "axes", {0});
  expect_tensor<float>(run(max, {f32({2, 2}, {1, -std::numeric_limits<float>::infinity(), -3, -5})}, 17)[0], {1, 2},
                       {1, -5});
  onnx::Node max18 = make_node("ReduceMax", 2);
  expect_tensor<int64_t>(run(max18, {i64({2, 2}, {1, 9, 4, 2}), i64({1}, {1})}, 18)[0], {2, 1}, {9, 4});
}

TEST(ReduceKernel, NonContiguousAxesAndMiddleAxis) {
  std::vector<float> v(24);
  std::iota(v.begin(), v.end(), 0.0F);
  auto x = f32({2, 3, 4}, v);
  onnx::Node sum = make_node("ReduceSum", 2);
  // Axes 0 and 2 are not adjacent: the kernel reduces a transposed copy.
  expect_tensor<float>(run(sum, {x, i64({2}, {0, 2})})[0], {1, 3, 1}, {60, 92, 124});
  // Middle axis: rows of 4 accumulated.
  onnx::Node mean = make_node("ReduceMean");
  set_ints(mean, "axes", {1});
  set_int(mean, "keepdims", 0);
  expect_tensor<float>(run(mean, {x}, 13)[0], {2, 4}, {4, 5, 6, 7, 16, 17, 18, 19});
  onnx::Node max = make_node("ReduceMax");
  set_ints(max, "axes", {1});
  expect_tensor<float>(run(max, {x}, 13)[0], {2, 1, 4}, {8, 9, 10, 11, 20, 21, 22, 23});
}

TEST(ReduceKernel, EmptyAndBadInputs) {
  onnx::Node sum = make_node("ReduceSum", 2);
  expect_tensor<float>(run(sum, {f32({2, 0}, {}), i64({1}, {1})})[0], {2, 1}, {0, 0});
  onnx::Node max = make_node("ReduceMax", 2);
  const float inf = std::numeric_limits<float>::infinity();
  expect_tensor<float>(run(max, {f32({2, 0}, {}), i64({1}, {1})}, 18)[0], {2, 1}, {-inf, -inf});
  expect_error([&] { run(sum, {f32({2}, {1, 2}), i64({1}, {2})}); }, ErrorKind::kInvalidInput);
  expect_error([&] { run(sum, {f32({2}, {1, 2}), i64({2}, {0, 0})}); }, ErrorKind::kInvalidInput);
  expect_error([&] { run(sum, {bools({1}, {1}), i64({1}, {0})}); }, ErrorKind::kInvalidInput);
}

}  // namespace
}  // namespace detrq::testing

namespace detrq::testing {
namespace {

TEST(ReduceKernel, MinAndProd) {
  auto x = f32({2, 3}, {1, -2, 3, 4, 5, 0.5F});
  onnx::Node min = make_node("ReduceMin");
  set_ints(min, "axes", {1});
  expect_tensor<float>(run(min, {x}, 13)[0], {2, 1}, {-2, 0.5F});
  onnx::Node prod = make_node("ReduceProd", 2);
  expect_tensor<float>(run(prod, {x, i64({1}, {0})}, 18)[0], {1, 3}, {4, -10, 1.5F});
}

TEST(ArgReduceKernel, FirstOrLastIndexOfTheExtreme) {
  auto x = f32({2, 3}, {1, 7, 7, 0, -1, 0});
  onnx::Node argmax = make_node("ArgMax");
  set_int(argmax, "axis", 1);
  expect_tensor<int64_t>(run(argmax, {x})[0], {2, 1}, {1, 0});
  set_int(argmax, "select_last_index", 1);
  expect_tensor<int64_t>(run(argmax, {x})[0], {2, 1}, {2, 2});
  onnx::Node argmin = make_node("ArgMin");
  set_int(argmin, "keepdims", 0);
  expect_tensor<int64_t>(run(argmin, {x})[0], {3}, {1, 1, 1});
}

}  // namespace
}  // namespace detrq::testing
