// TensorProto <-> Tensor: every storage form ONNX allows (raw_data, typed repeated fields, external
// data), with the declared size checked against the data so that a corrupt file is an error, not a crash.
#include "tensor_proto.h"

#include <cstring>
#include <limits>

#include "detrq/core/error.h"

namespace detrq::onnx::detail {
namespace {
using core::DType;
using core::Tensor;

bool storable(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: case DType::kUInt8: case DType::kInt8: case DType::kUInt16: case DType::kInt16:
    case DType::kInt32: case DType::kInt64: case DType::kBool: case DType::kFloat16: case DType::kFloat64:
    case DType::kUInt32: case DType::kUInt64: case DType::kBFloat16:
      return true;
    default:
      return false;
  }
}

// Copies `count` values of a repeated field into the tensor, narrowing to the element type.
template <typename Dst, typename Field>
void copy_field(const Field& field, Tensor& t) {
  auto* out = static_cast<Dst*>(t.raw_data());
  for (int i = 0; i < field.size(); ++i) out[i] = static_cast<Dst>(field.Get(i));
}
}  // namespace

const std::byte* ExternalData::bytes(const std::string& where, const std::string& location, uint64_t offset,
                                     uint64_t length) {
  if (base_dir_.empty()) {
    throw_invalid(where, "refers to external data '" + location + "' but the model was not loaded from a file",
                  "load the model from its folder");
  }
  const std::filesystem::path rel(location);
  if (location.empty() || rel.is_absolute()) {
    throw_invalid(where, "external data location '" + location + "' is not a relative path",
                  "ONNX external data must sit beside the model");
  }
  for (const auto& part : rel) {
    if (part == "..") {
      throw_invalid(where, "external data location '" + location + "' leaves the model's folder",
                    "ONNX external data must sit beside the model");
    }
  }
  auto it = files_.find(location);
  if (it == files_.end()) it = files_.emplace(location, core::MappedFile::open(base_dir_ / rel)).first;
  const core::MappedFile& file = *it->second;
  if (offset > file.size() || length > file.size() - offset) {
    throw_invalid(where,
                  "external data [" + std::to_string(offset) + ", +" + std::to_string(length) + ") lies beyond the end of '" +
                      location + "' (" + std::to_string(file.size()) + " bytes)",
                  "the data file is truncated or does not belong to this model");
  }
  return file.data() + offset;
}

Tensor tensor_from_proto(const ::onnx::TensorProto& proto, const std::string& where, ExternalData* external) {
  const auto dtype = static_cast<DType>(proto.data_type());
  if (!storable(dtype)) {
    throw_unsupported(where, "tensor data type " + std::to_string(proto.data_type()) + " (" +
                                 ::onnx::TensorProto_DataType_Name(proto.data_type()) + ") is not supported",
                      "detrq handles numeric and bool tensors");
  }
  if (proto.has_segment()) throw_unsupported(where, "segmented tensors are not supported");
  core::Shape shape;
  uint64_t numel = 1;
  constexpr uint64_t kMaxElements = uint64_t{1} << 40;
  for (int64_t d : proto.dims()) {
    if (d < 0) throw_invalid(where, "negative dimension " + std::to_string(d), "the file is corrupt");
    if (d != 0 && numel > kMaxElements / static_cast<uint64_t>(d)) {
      throw_invalid(where, "declared shape is absurdly large", "the file is corrupt");
    }
    numel *= static_cast<uint64_t>(d);
    shape.push_back(d);
  }
  const uint64_t expected_bytes = numel * core::dtype_size(dtype);
  const std::string declared = std::string(core::dtype_name(dtype)) + core::shape_to_string(shape);

  auto size_error = [&](uint64_t got, const char* what) {
    throw_invalid(where,
                  "declares " + declared + " (" + std::to_string(expected_bytes) + " bytes) but its " + what + " holds " +
                      std::to_string(got) + (std::strcmp(what, "raw_data") == 0 || std::strcmp(what, "external data") == 0
                                                 ? " bytes"
                                                 : " values"),
                  "the file is truncated or corrupt");
  };

  if (proto.data_location() == ::onnx::TensorProto::EXTERNAL) {
    std::string location;
    uint64_t offset = 0;
    uint64_t length = expected_bytes;
    bool has_length = false;
    for (const auto& entry : proto.external_data()) {
      try {
        if (entry.key() == "location") location = entry.value();
        if (entry.key() == "offset") offset = std::stoull(entry.value());
        if (entry.key() == "length") {
          length = std::stoull(entry.value());
          has_length = true;
        }
      } catch (const std::exception&) {
        throw_invalid(where, "external data entry '" + entry.key() + "' is not a number: '" + entry.value() + "'");
      }
    }
    if (has_length && length != expected_bytes) size_error(length, "external data");
    if (!external) throw_invalid(where, "refers to external data, which is not allowed here");
    const std::byte* src = external->bytes(where, location, offset, expected_bytes);
    Tensor t = Tensor::empty(dtype, shape);
    if (expected_bytes) std::memcpy(t.raw_data(), src, expected_bytes);
    return t;
  }

  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != expected_bytes) size_error(proto.raw_data().size(), "raw_data");
    Tensor t = Tensor::empty(dtype, shape);
    if (expected_bytes) std::memcpy(t.raw_data(), proto.raw_data().data(), expected_bytes);
    return t;
  }
  // Typed fields: check the count before allocating, so a corrupt shape cannot ask for terabytes.
  int count = 0;
  switch (dtype) {
    case DType::kFloat32: count = proto.float_data_size(); break;
    case DType::kFloat64: count = proto.double_data_size(); break;
    case DType::kInt64: count = proto.int64_data_size(); break;
    case DType::kUInt32: case DType::kUInt64: count = proto.uint64_data_size(); break;
    default: count = proto.int32_data_size(); break;
  }
  if (static_cast<uint64_t>(count) != numel) size_error(static_cast<uint64_t>(count), "typed data field");
  Tensor t = Tensor::empty(dtype, shape);
  switch (dtype) {
    case DType::kFloat32: copy_field<float>(proto.float_data(), t); break;
    case DType::kFloat64: copy_field<double>(proto.double_data(), t); break;
    case DType::kInt64: copy_field<int64_t>(proto.int64_data(), t); break;
    case DType::kUInt32: copy_field<uint32_t>(proto.uint64_data(), t); break;
    case DType::kUInt64: copy_field<uint64_t>(proto.uint64_data(), t); break;
    case DType::kInt32: copy_field<int32_t>(proto.int32_data(), t); break;
    case DType::kInt16: copy_field<int16_t>(proto.int32_data(), t); break;
    case DType::kInt8: copy_field<int8_t>(proto.int32_data(), t); break;
    // Halves travel as their bit patterns in int32_data.
    case DType::kUInt16: case DType::kFloat16: case DType::kBFloat16: copy_field<uint16_t>(proto.int32_data(), t); break;
    case DType::kUInt8: copy_field<uint8_t>(proto.int32_data(), t); break;
    case DType::kBool: {
      auto* out = static_cast<uint8_t*>(t.raw_data());
      for (int i = 0; i < count; ++i) out[i] = proto.int32_data(i) != 0 ? 1 : 0;
      break;
    }
    default:
      throw_unsupported(where, "tensor data type " + std::string(core::dtype_name(dtype)) + " is not supported");
  }
  return t;
}

void tensor_to_proto(const Tensor& tensor, const std::string& name, ::onnx::TensorProto* proto) {
  proto->set_name(name);
  proto->set_data_type(static_cast<int32_t>(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto->add_dims(d);
  proto->set_raw_data(tensor.raw_data(), tensor.nbytes());
}

}  // namespace detrq::onnx::detail
