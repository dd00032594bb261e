// Tensor files: .npy write/parse round trips for every dtype NumPy has, header validation, TensorProto
// .pb round trips, and raw .bin size checks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/onnx/tensor_file.h"

namespace detrq::onnx {
namespace {
using core::DType;
using core::Tensor;

Tensor pattern(DType dtype, core::Shape shape) {
  Tensor t = Tensor::empty(dtype, std::move(shape));
  auto* p = static_cast<unsigned char*>(t.raw_data());
  for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(i * 37 + 11);
  if (dtype == DType::kBool) {
    for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  }
  return t;
}

void expect_equal(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dtype(), b.dtype());
  EXPECT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.nbytes(), b.nbytes());
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0);
}

TEST(TensorFile, NpyRoundTripEveryDtypeAndRank) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt8, DType::kUInt8, DType::kInt16,
                  DType::kUInt16, DType::kInt32, DType::kUInt32, DType::kInt64, DType::kUInt64, DType::kBool}) {
    for (const core::Shape& s : {core::Shape{}, core::Shape{5}, core::Shape{2, 3, 4}, core::Shape{0, 3}}) {
      const Tensor t = pattern(d, s);
      const std::string bytes = serialize_npy(t);
      EXPECT_EQ((bytes.size() - t.nbytes()) % 64, 0u);  // data starts on a 64-byte boundary
      expect_equal(parse_npy(bytes, "t.npy"), t);
    }
  }
  const std::string one = serialize_npy(pattern(DType::kFloat32, {4}));
  EXPECT_NE(one.find("'shape': (4,)"), std::string::npos);
  EXPECT_NE(one.find("'descr': '<f4'"), std::string::npos);
}

TEST(TensorFile, NpyHeaderErrors) {
  std::string bytes = serialize_npy(pattern(DType::kFloat32, {2, 3}));
  auto msg = [](const std::string& b) {
    try {
      parse_npy(b, "x.npy");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg(bytes.substr(0, bytes.size() - 4)).find("holds 20 data bytes"), std::string::npos);
  EXPECT_NE(msg("not numpy at all").find("bad magic"), std::string::npos);
  std::string big_endian = bytes;
  big_endian.replace(big_endian.find("<f4"), 3, ">f4");
  EXPECT_NE(msg(big_endian).find("'>f4'"), std::string::npos);
  std::string fortran = bytes;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_NE(msg(fortran).find("Fortran"), std::string::npos);
  EXPECT_NE(msg(bytes.substr(0, 20)).find("truncated"), std::string::npos);
  EXPECT_THROW(serialize_npy(pattern(DType::kBFloat16, {2})), Error);  // NumPy has no bfloat16
}

TEST(TensorFile, TensorProtoRoundTripAndFiles) {
  const Tensor t = pattern(DType::kInt64, {3, 2});
  expect_equal(parse_tensor_proto(serialize_tensor_proto(t, "t"), "t.pb"), t);
  EXPECT_THROW(parse_tensor_proto("\xff\xff\xff", "bad.pb"), Error);

  const auto dir = std::filesystem::temp_directory_path() / ("detrq_tensor_file_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const Tensor f = pattern(DType::kFloat32, {1, 2, 3});
  write_npy(dir / "a.npy", f);
  expect_equal(read_tensor_file(dir / "a.npy", {}), f);
  core::write_file_atomic(dir / "a.pb", serialize_tensor_proto(f, "a"));
  expect_equal(read_tensor_file(dir / "a.pb", {}), f);
  core::write_file_atomic(dir / "a.bin", std::string(static_cast<const char*>(f.raw_data()), f.nbytes()));
  expect_equal(read_tensor_file(dir / "a.bin", {1, 2, 3}), f);
  EXPECT_THROW(read_tensor_file(dir / "a.bin", {1, 2, 4}), Error);
  try {
    read_tensor_file(dir / "a.txt", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace detrq::onnx
