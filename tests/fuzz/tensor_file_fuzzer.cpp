// libFuzzer target for the tensor files `detrq run` reads (onnx::parse_npy, onnx::parse_tensor_proto): any
// bytes parse or throw detrq::Error; a tensor that parses writes back (.npy and TensorProto) to bytes that
// parse to the same type, shape and data.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "detrq/core/error.h"
#include "detrq/onnx/tensor_file.h"

namespace {

void check_same(const detrq::core::Tensor& a, const detrq::core::Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape() || a.nbytes() != b.nbytes()) std::abort();
  if (a.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) != 0) std::abort();
}

void round_trip(const detrq::core::Tensor& t) {
  try {
    check_same(t, detrq::onnx::parse_npy(detrq::onnx::serialize_npy(t), "roundtrip.npy"));
  } catch (const detrq::Error& e) {
    if (e.kind() != detrq::ErrorKind::kUnsupported) throw;  // a dtype NumPy has no name for
  }
  check_same(t, detrq::onnx::parse_tensor_proto(detrq::onnx::serialize_tensor_proto(t, "t"), "roundtrip.pb"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    round_trip(detrq::onnx::parse_npy(bytes, "fuzz.npy"));
  } catch (const detrq::Error&) {
  }
  try {
    round_trip(detrq::onnx::parse_tensor_proto(bytes, "fuzz.pb"));
  } catch (const detrq::Error&) {
  }
  return 0;
}
