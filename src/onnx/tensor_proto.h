// Conversion between ONNX TensorProto messages and detrq tensors (internal to the onnx module).
#pragma once

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "detrq/core/file_io.h"
#include "detrq/core/tensor.h"

namespace detrq::onnx::detail {

// Resolves external data locations against the model's folder, mapping each data file once.
class ExternalData {
 public:
  // An empty `base_dir` refuses every external reference (models parsed from memory).
  explicit ExternalData(std::filesystem::path base_dir) : base_dir_(std::move(base_dir)) {}
  // The bytes [offset, offset + length) of `location`; `where` names the tensor for errors.
  const std::byte* bytes(const std::string& where, const std::string& location, uint64_t offset, uint64_t length);

 private:
  std::filesystem::path base_dir_;
  std::map<std::string, std::shared_ptr<core::MappedFile>> files_;
};

// Converts a TensorProto, checking that the declared shape and the data agree. `where` names the
// tensor (and its file) in errors. `external` may be nullptr (external data then refused).
core::Tensor tensor_from_proto(const ::onnx::TensorProto& proto, const std::string& where, ExternalData* external);
// Fills `proto` with `tensor` as raw little-endian data.
void tensor_to_proto(const core::Tensor& tensor, const std::string& name, ::onnx::TensorProto* proto);

}  // namespace detrq::onnx::detail
