// Shape kernels (views, Shape, constants, Concat, Split, Slice, Gather*, ScatterND, Expand, Tile,
// Transpose, CumSum, TopK) against hand-computed values.
#include <limits>
#include <numeric>

#include "runtime/basic_kernel_test_util.h"

namespace detrq::testing {
namespace {

std::vector<float> iota_f(int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0.0F);
  return v;
}

TEST(ViewKernels, ReshapeInfersZeroAndMinusOne) {
  auto x = f32({2, 3, 4}, iota_f(24));
  expect_tensor<float>(run(make_node("Reshape", 2), {x, i64({2}, {0, -1})})[0], {2, 12}, iota_f(24));
  expect_tensor<float>(run(make_node("Reshape", 2), {x, i64({3}, {4, -1, 3})})[0], {4, 2, 3}, iota_f(24));
  // allowzero: 0 is a real zero-sized dimension, so this reshape of 24 elements is refused.
  onnx::Node az = make_node("Reshape", 2);
  set_int(az, "allowzero", 1);
  expect_error([&] { run(az, {x, i64({2}, {0, -1})}); }, ErrorKind::kInvalidInput);
  expect_tensor<float>(run(az, {f32({0, 3}, {}), i64({2}, {3, 0})})[0], {3, 0}, {});
  expect_error([&] { run(make_node("Reshape", 2), {x, i64({2}, {5, -1})}); }, ErrorKind::kInvalidInput);
  expect_error([&] { run(make_node("Reshape", 2), {x, i64({2}, {-1, -1})}); }, ErrorKind::kInvalidInput);
  // A shape that is not a constant cannot be planned.
  expect_error([&] { run(make_node("Reshape", 2), {x, i64({2}, {4, 6})}, 17, false); }, ErrorKind::kUnsupported);
}

TEST(ViewKernels, SqueezeUnsqueezeFlattenAlias) {
  auto x = f32({1, 3, 1, 2}, iota_f(6));
  auto y = run(make_node("Squeeze"), {x});
  expect_tensor<float>(y[0], {3, 2}, iota_f(6));
  EXPECT_EQ(y[0].raw_data(), x.raw_data());  // no copy: the output aliases the input
  expect_tensor<float>(run(make_node("Squeeze", 2), {x, i64({1}, {-2})})[0], {1, 3, 2}, iota_f(6));
  onnx::Node old = make_node("Squeeze");
  set_ints(old, "axes", {0});
  expect_tensor<float>(run(old, {x}, 11)[0], {3, 1, 2}, iota_f(6));
  expect_error([&] { run(make_node("Squeeze", 2), {x, i64({1}, {1})}); }, ErrorKind::kInvalidInput);

  expect_tensor<float>(run(make_node("Unsqueeze", 2), {f32({3}, {1, 2, 3}), i64({2}, {0, -1})})[0], {1, 3, 1}, {1, 2, 3});
  onnx::Node old_u = make_node("Unsqueeze");
  set_ints(old_u, "axes", {1});
  expect_tensor<float>(run(old_u, {f32({3}, {1, 2, 3})}, 11)[0], {3, 1}, {1, 2, 3});
  expect_error([&] { run(make_node("Unsqueeze", 2), {f32({3}, {1, 2, 3}), i64({2}, {0, 0})}); }, ErrorKind::kInvalidInput);

  onnx::Node flat = make_node("Flatten");
  set_int(flat, "axis", -1);
  expect_tensor<float>(run(flat, {x})[0], {3, 2}, iota_f(6));
  set_int(flat, "axis", 0);
  expect_tensor<float>(run(flat, {x})[0], {1, 6}, iota_f(6));
  expect_tensor<int64_t>(run(make_node("Identity"), {i64({2}, {7, 8})})[0], {2}, {7, 8});
}

TEST(ShapeKernel, DimsWithStartAndEnd) {
  auto x = f32({2, 3, 4, 5}, std::vector<float>(120));
  expect_tensor<int64_t>(run(make_node("Shape"), {x})[0], {4}, {2, 3, 4, 5});
  onnx::Node node = make_node("Shape");
  set_int(node, "start", -3);
  set_int(node, "end", -1);
  expect_tensor<int64_t>(run(node, {x})[0], {2}, {3, 4});
  set_int(node, "start", 10);
  expect_tensor<int64_t>(run(node, {x})[0], {0}, {});
}

TEST(ConstantKernels, ValueFormsAndConstantOfShape) {
  onnx::Node c = make_node("Constant", 0);
  set_tensor(c, "value", i64({2}, {3, 4}));
  expect_tensor<int64_t>(run(c, {})[0], {2}, {3, 4});
  onnx::Node cf = make_node("Constant", 0);
  set_floats(cf, "value_floats", {1.5F, 2.5F});
  expect_tensor<float>(run(cf, {})[0], {2}, {1.5F, 2.5F});
  onnx::Node ci = make_node("Constant", 0);
  set_int(ci, "value_int", 9);
  expect_tensor<int64_t>(run(ci, {})[0], {}, {9});
  onnx::Node none = make_node("Constant", 0);
  expect_error([&] { run(none, {}); }, ErrorKind::kInvalidInput);

  expect_tensor<float>(run(make_node("ConstantOfShape"), {i64({2}, {2, 2})})[0], {2, 2}, {0, 0, 0, 0});
  onnx::Node cos = make_node("ConstantOfShape");
  set_tensor(cos, "value", i64({1}, {7}));
  expect_tensor<int64_t>(run(cos, {i64({1}, {3})})[0], {3}, {7, 7, 7});
  expect_error([&] { run(cos, {i64({1}, {-3})}); }, ErrorKind::kInvalidInput);
}

TEST(ConcatSplitKernels, RoundTrip) {
  onnx::Node concat = make_node("Concat", 3);
  set_int(concat, "axis", 1);
  auto y = run(concat, {f32({2, 1}, {1, 2}), f32({2, 2}, {3, 4, 5, 6}), f32({2, 0}, {})});
  expect_tensor<float>(y[0], {2, 3}, {1, 3, 4, 2, 5, 6});
  expect_error([&] { run(concat, {f32({2, 1}, {1, 2}), f32({3, 1}, {1, 2, 3})}); }, ErrorKind::kInvalidInput);

  onnx::Node split = make_node("Split", 2, 2);
  set_int(split, "axis", 1);
  auto parts = run(split, {y[0], i64({2}, {1, 2})});
  expect_tensor<float>(parts[0], {2, 1}, {1, 2});
  expect_tensor<float>(parts[1], {2, 2}, {3, 4, 5, 6});
  onnx::Node equal = make_node("Split", 1, 3);
  parts = run(equal, {f32({6}, iota_f(6))});
  expect_tensor<float>(parts[2], {2}, {4, 5});
  onnx::Node old = make_node("Split", 1, 2);
  set_ints(old, "split", {4, 2});
  parts = run(old, {f32({6}, iota_f(6))}, 11);
  expect_tensor<float>(parts[0], {4}, {0, 1, 2, 3});
  onnx::Node uneven = make_node("Split", 1, 3);
  set_int(uneven, "num_outputs", 3);
  parts = run(uneven, {f32({7}, iota_f(7))}, 18);
  expect_tensor<float>(parts[2], {1}, {6});
  expect_error([&] { run(equal, {f32({7}, iota_f(7))}); }, ErrorKind::kInvalidInput);
}

TEST(SliceKernel, StepsClampingAndNegativeAxes) {
  auto x = f32({3, 4}, iota_f(12));
  auto y = run(make_node("Slice", 3), {x, i64({2}, {1, 0}), i64({2}, {1000, 3})});
  expect_tensor<float>(y[0], {2, 3}, {4, 5, 6, 8, 9, 10});
  // Reversed columns with a negative step, starting past the end (clamped).
  y = run(make_node("Slice", 5), {x, i64({1}, {100}), i64({1}, {-1000}), i64({1}, {-1}), i64({1}, {-2})});
  expect_tensor<float>(y[0], {3, 2}, {3, 1, 7, 5, 11, 9});
  y = run(make_node("Slice", 4), {x, i64({1}, {2}), i64({1}, {1}), i64({1}, {0})});
  expect_tensor<float>(y[0], {0, 4}, {});
  onnx::Node old = make_node("Slice");
  set_ints(old, "starts", {1});
  set_ints(old, "ends", {2});
  set_ints(old, "axes", {1});
  expect_tensor<float>(run(old, {x}, 9)[0], {3, 1}, {1, 5, 9});
  expect_error([&] { run(make_node("Slice", 5), {x, i64({1}, {0}), i64({1}, {1}), i64({1}, {0}), i64({1}, {0})}); },
               ErrorKind::kInvalidInput);
}

TEST(GatherKernels, GatherAndGatherElements) {
  auto x = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  expect_tensor<float>(run(make_node("Gather", 2), {x, i64({2}, {2, -3})})[0], {2, 2}, {5, 6, 1, 2});
  onnx::Node g1 = make_node("Gather", 2);
  set_int(g1, "axis", 1);
  expect_tensor<float>(run(g1, {x, tensor<int32_t>({}, {1})})[0], {3}, {2, 4, 6});
  expect_error([&] { run(make_node("Gather", 2), {x, i64({1}, {3})}); }, ErrorKind::kInvalidInput);

  onnx::Node ge = make_node("GatherElements", 2);
  set_int(ge, "axis", 1);
  expect_tensor<float>(run(ge, {x, i64({3, 2}, {1, 0, 0, 0, 1, -1})})[0], {3, 2}, {2, 1, 3, 3, 6, 6});
  set_int(ge, "axis", 0);
  expect_tensor<float>(run(ge, {x, i64({2, 2}, {2, 0, 1, 2})})[0], {2, 2}, {5, 2, 3, 6});
  expect_error([&] { run(ge, {x, i64({1, 1}, {5})}); }, ErrorKind::kInvalidInput);
}

TEST(ScatterNDKernel, ReplacesSlices) {
  auto data = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  auto y = run(make_node("ScatterND", 3), {data, i64({2, 1}, {2, 0}), f32({2, 2}, {50, 60, 10, 20})});
  expect_tensor<float>(y[0], {3, 2}, {10, 20, 3, 4, 50, 60});
  y = run(make_node("ScatterND", 3), {data, i64({1, 2}, {1, 1}), f32({1}, {-4})});
  expect_tensor<float>(y[0], {3, 2}, {1, 2, 3, -4, 5, 6});
  onnx::Node add = make_node("ScatterND", 3);
  onnx::Attribute r;
  r.kind = onnx::Attribute::Kind::kString;
  r.s = "add";
  add.attributes["reduction"] = r;
  y = run(add, {data, i64({2, 2}, {0, 0, 0, 0}), f32({2}, {10, 100})});
  expect_tensor<float>(y[0], {3, 2}, {111, 2, 3, 4, 5, 6});
  expect_error([&] { run(make_node("ScatterND", 3), {data, i64({1, 1}, {3}), f32({1, 2}, {0, 0})}); },
               ErrorKind::kInvalidInput);
}

TEST(ExpandTileKernels, Broadcast) {
  expect_tensor<float>(run(make_node("Expand", 2), {f32({3, 1}, {1, 2, 3}), i64({3}, {2, 1, 2})})[0], {2, 3, 2},
                       {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  expect_error([&] { run(make_node("Expand", 2), {f32({3}, {1, 2, 3}), i64({1}, {2})}); }, ErrorKind::kInvalidInput);
  expect_tensor<int64_t>(run(make_node("Tile", 2), {i64({2, 2}, {1, 2, 3, 4}), i64({2}, {2, 2})})[0], {4, 4},
                         {1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4});
}

TEST(TransposeKernel, PermutationsMatchIndexMath) {
  const Shape in{2, 3, 4, 5};
  auto x = f32(in, iota_f(120));
  onnx::Node node = make_node("Transpose");
  const std::vector<int64_t> perm{0, 2, 3, 1};
  set_ints(node, "perm", perm);
  auto y = run(node, {x});
  std::vector<float> expect;
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t d = 0; d < 5; ++d)
        for (int64_t b = 0; b < 3; ++b) expect.push_back(static_cast<float>(((a * 3 + b) * 4 + c) * 5 + d));
  expect_tensor<float>(y[0], {2, 4, 5, 3}, expect);
  auto t = run(make_node("Transpose"), {f32({2, 3}, iota_f(6))});
  expect_tensor<float>(t[0], {3, 2}, {0, 3, 1, 4, 2, 5});
  set_ints(node, "perm", {0, 0, 1, 2});
  expect_error([&] { run(node, {x}); }, ErrorKind::kInvalidInput);
}

// Shapes large enough for the tiled path (a gathered inner run with a contiguous outer axis, edges not a
// multiple of the tile), against index arithmetic.
TEST(TransposeKernel, TiledTransposesMatchIndexMath) {
  struct Case {
    Shape in;
    std::vector<int64_t> perm;
  };
  for (const Case& c : {Case{{3, 37, 5, 20}, {0, 2, 3, 1}}, Case{{2, 9, 41}, {0, 2, 1}}, Case{{19, 33}, {1, 0}},
                        Case{{2, 17, 3, 26}, {3, 1, 0, 2}}}) {
    const int64_t n = core::shape_numel(c.in);
    auto x = f32(c.in, iota_f(static_cast<std::size_t>(n)));
    onnx::Node node = make_node("Transpose");
    set_ints(node, "perm", c.perm);
    auto y = run(node, {x});
    Shape out_shape;
    for (int64_t p : c.perm) out_shape.push_back(c.in[static_cast<std::size_t>(p)]);
    std::vector<int64_t> in_strides(c.in.size(), 1);
    for (std::size_t d = c.in.size() - 1; d-- > 0;) in_strides[d] = in_strides[d + 1] * c.in[d + 1];
    std::vector<float> expect(static_cast<std::size_t>(n));
    for (int64_t flat = 0; flat < n; ++flat) {
      int64_t rem = flat, src = 0;
      for (std::size_t d = out_shape.size(); d-- > 0;) {
        src += (rem % out_shape[d]) * in_strides[static_cast<std::size_t>(c.perm[d])];
        rem /= out_shape[d];
      }
      expect[static_cast<std::size_t>(flat)] = static_cast<float>(src);
    }
    expect_tensor<float>(y[0], out_shape, expect);
  }
}

TEST(CumSumKernel, ExclusiveAndReverse) {
  auto x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_tensor<float>(run(make_node("CumSum", 2), {x, i64({}, {1})})[0], {2, 3}, {1, 3, 6, 4, 9, 15});
  onnx::Node node = make_node("CumSum", 2);
  set_int(node, "exclusive", 1);
  set_int(node, "reverse", 1);
  expect_tensor<float>(run(node, {x, tensor<int32_t>({}, {0})})[0], {2, 3}, {4, 5, 6, 0, 0, 0});
  set_int(node, "exclusive", 0);
  expect_tensor<int64_t>(run(node, {i64({4}, {1, 2, 3, 4}), i64({}, {-1})})[0], {4}, {10, 9, 7, 4});
}

TEST(TopKKernel, LargestSmallestAndStableTies) {
  auto x = f32({2, 4}, {1, 3, 3, 2, 5, 5, 5, 0});
  auto y = run(make_node("TopK", 2, 2), {x, i64({1}, {2})});
  expect_tensor<float>(y[0], {2, 2}, {3, 3, 5, 5});
  expect_tensor<int64_t>(y[1], {2, 2}, {1, 2, 0, 1});
  onnx::Node small = make_node("TopK", 2, 2);
  set_int(small, "largest", 0);
  set_int(small, "axis", 0);
  y = run(small, {x, i64({1}, {1})});
  expect_tensor<float>(y[0], {1, 4}, {1, 3, 3, 0});
  expect_tensor<int64_t>(y[1], {1, 4}, {0, 0, 0, 1});
  // NaN ranks above every number and does not break the ordering.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  y = run(make_node("TopK", 2, 2), {f32({4}, {1, nan, 7, 2}), i64({1}, {2})});
  expect_tensor<int64_t>(y[1], {2}, {1, 2});
  expect_error([&] { run(make_node("TopK", 2, 2), {x, i64({1}, {5})}); }, ErrorKind::kInvalidInput);
}

}  // namespace
}  // namespace detrq::testing

namespace detrq::testing {
namespace {

TEST(RangeSizeKernels, LengthFromConstants) {
  expect_tensor<int64_t>(run(make_node("Range", 3), {i64({}, {10}), i64({}, {4}), i64({}, {-3})})[0], {2}, {10, 7});
  expect_tensor<float>(run(make_node("Range", 3), {f32({}, {0}), f32({}, {1}), f32({}, {0.25F})})[0], {4},
                       {0, 0.25F, 0.5F, 0.75F});
  expect_tensor<int64_t>(run(make_node("Range", 3), {i64({}, {5}), i64({}, {1}), i64({}, {1})})[0], {0}, {});
  expect_error([] { run(make_node("Range", 3), {i64({}, {0}), i64({}, {1}), i64({}, {0})}); }, ErrorKind::kInvalidInput);
  expect_tensor<int64_t>(run(make_node("Size"), {f32({2, 3}, std::vector<float>(6))})[0], {}, {6});
}

}  // namespace
}  // namespace detrq::testing
