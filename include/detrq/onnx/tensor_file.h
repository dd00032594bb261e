// Tensor files as `detrq run` reads and writes them: NumPy .npy, ONNX TensorProto .pb (the format of
// the ONNX backend test data) and raw little-endian float32 .bin.
#pragma once

#include <filesystem>
#include <string>

#include "detrq/core/tensor.h"

namespace detrq::onnx {

// .npy version 1-3, little-endian or single-byte dtypes, C order. Errors name the file.
core::Tensor read_npy(const std::filesystem::path& path);
core::Tensor parse_npy(const std::string& bytes, const std::string& source_name);
// Writes .npy version 1.0 atomically.
void write_npy(const std::filesystem::path& path, const core::Tensor& tensor);
std::string serialize_npy(const core::Tensor& tensor);

// One serialized onnx.TensorProto.
core::Tensor read_tensor_proto(const std::filesystem::path& path);
core::Tensor parse_tensor_proto(const std::string& bytes, const std::string& source_name);
std::string serialize_tensor_proto(const core::Tensor& tensor, const std::string& name);

// By extension: .npy, .pb, or .bin (raw float32 of `bin_shape`, whose size must match).
core::Tensor read_tensor_file(const std::filesystem::path& path, const core::Shape& bin_shape);

}  // namespace detrq::onnx
