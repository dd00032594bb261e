// .npy, TensorProto .pb and raw .bin tensor files, with every header field checked against the data.
#include "detrq/onnx/tensor_file.h"

#include <onnx/onnx_pb.h>

#include <climits>
#include <cstring>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "tensor_proto.h"

namespace detrq::onnx {
namespace {
using core::DType;
using core::Tensor;

constexpr char kNpyMagic[] = "\x93NUMPY";

struct NpyType {
  const char* descr;
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {
    {"f4", DType::kFloat32}, {"f8", DType::kFloat64}, {"f2", DType::kFloat16}, {"i1", DType::kInt8},
    {"u1", DType::kUInt8},   {"i2", DType::kInt16},   {"u2", DType::kUInt16},  {"i4", DType::kInt32},
    {"u4", DType::kUInt32},  {"i8", DType::kInt64},   {"u8", DType::kUInt64},  {"b1", DType::kBool},
};

DType npy_dtype(const std::string& descr, const std::string& source) {
  if (descr.size() == 3 && (descr[0] == '<' || descr[0] == '|' || descr[0] == '=')) {
    for (const auto& t : kNpyTypes) {
      if (descr.compare(1, 2, t.descr) == 0) return t.dtype;
    }
  }
  throw_unsupported(source, "has .npy dtype '" + descr + "'",
                    "detrq reads little-endian bool, integer and float arrays");
}

std::string npy_descr(DType dtype) {
  for (const auto& t : kNpyTypes) {
    if (t.dtype == dtype) return std::string(core::dtype_size(dtype) == 1 ? "|" : "<") + t.descr;
  }
  throw_unsupported("npy", std::string("cannot write dtype ") + core::dtype_name(dtype) + " as .npy",
                    "NumPy has no such dtype");
}
}  // namespace

Tensor parse_npy(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 10 || bytes.compare(0, 6, kNpyMagic, 6) != 0) {
    throw_invalid(source, "is not a .npy file (bad magic)", "write it with numpy.save");
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0;
  std::size_t header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw_invalid(source, "truncated .npy header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    throw_unsupported(source, ".npy version " + std::to_string(major) + " is not supported");
  }
  if (header_len > bytes.size() - header_start) throw_invalid(source, "truncated .npy header", "the file is incomplete");
  const std::string header = bytes.substr(header_start, header_len);
  // The header is a Python dict literal; the three keys NumPy writes are all detrq needs.
  auto value_after = [&](const char* key) -> std::string {
    const auto k = header.find(key);
    if (k == std::string::npos) throw_invalid(source, std::string("the .npy header has no ") + key);
    auto v = header.find(':', k);
    if (v == std::string::npos) throw_invalid(source, "malformed .npy header");
    v = header.find_first_not_of(" ", v + 1);
    if (v == std::string::npos) throw_invalid(source, "malformed .npy header");
    return header.substr(v);
  };
  const std::string descr_text = value_after("'descr'");
  const auto quote_end = descr_text.find('\'', 1);
  if (descr_text.empty() || descr_text[0] != '\'' || quote_end == std::string::npos) {
    throw_invalid(source, "malformed .npy 'descr'");
  }
  const DType dtype = npy_dtype(descr_text.substr(1, quote_end - 1), source);
  if (value_after("'fortran_order'").rfind("True", 0) == 0) {
    throw_unsupported(source, "is a Fortran-ordered array", "save it with numpy.ascontiguousarray");
  }
  const std::string shape_text = value_after("'shape'");
  const auto close = shape_text.find(')');
  if (shape_text.empty() || shape_text[0] != '(' || close == std::string::npos) {
    throw_invalid(source, "malformed .npy 'shape'");
  }
  core::Shape shape;
  uint64_t numel = 1;
  std::string digits;
  for (std::size_t i = 1; i <= close; ++i) {
    const char c = shape_text[i];
    if (c >= '0' && c <= '9') {
      digits += c;
      continue;
    }
    if (c != ',' && c != ' ' && c != ')' && c != 'L') throw_invalid(source, "malformed .npy 'shape'");
    if (digits.empty()) continue;
    if (digits.size() > 12) throw_invalid(source, "has an absurd .npy dimension " + digits);
    shape.push_back(std::stoll(digits));
    digits.clear();
    // Checked before multiplying: (2^39, 2^25) would wrap around to 0 elements and match an empty file.
    const auto d = static_cast<uint64_t>(shape.back());
    if (d != 0 && numel > (uint64_t{1} << 40) / d) throw_invalid(source, "has an absurd .npy shape");
    numel *= d;
  }
  const std::size_t data_start = header_start + header_len;
  const uint64_t want = numel * core::dtype_size(dtype);
  if (bytes.size() - data_start != want) {
    throw_invalid(source,
                  "holds " + std::to_string(bytes.size() - data_start) + " data bytes, but its header declares " +
                      core::dtype_name(dtype) + core::shape_to_string(shape) + " (" + std::to_string(want) + " bytes)",
                  "the file is truncated or corrupt");
  }
  Tensor t = Tensor::empty(dtype, shape);
  if (want) std::memcpy(t.raw_data(), bytes.data() + data_start, want);
  return t;
}

Tensor read_npy(const std::filesystem::path& path) { return parse_npy(core::read_file(path), path.string()); }

std::string serialize_npy(const Tensor& tensor) {
  // NumPy's tuple syntax: (), (4,) or (2, 3).
  std::string shape;
  for (int i = 0; i < tensor.rank(); ++i) shape += (i ? ", " : "") + std::to_string(tensor.dim(i));
  if (tensor.rank() == 1) shape += ",";
  std::string header = "{'descr': '" + npy_descr(tensor.dtype()) + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Pad with spaces and a newline so that the data starts on a 64-byte boundary.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out(kNpyMagic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>((header.size() >> 8) & 0xFF);
  out += header;
  out.append(static_cast<const char*>(tensor.raw_data()), tensor.nbytes());
  return out;
}

void write_npy(const std::filesystem::path& path, const Tensor& tensor) {
  core::write_file_atomic(path, serialize_npy(tensor));
}

Tensor parse_tensor_proto(const std::string& bytes, const std::string& source) {
  ::onnx::TensorProto proto;
  if (bytes.size() > static_cast<std::size_t>(INT_MAX) || !proto.ParseFromString(bytes)) {
    throw_invalid(source, "is not a serialized ONNX TensorProto", "the file is truncated or corrupt");
  }
  return detail::tensor_from_proto(proto, source, nullptr);
}

Tensor read_tensor_proto(const std::filesystem::path& path) {
  return parse_tensor_proto(core::read_file(path), path.string());
}

std::string serialize_tensor_proto(const Tensor& tensor, const std::string& name) {
  ::onnx::TensorProto proto;
  detail::tensor_to_proto(tensor, name, &proto);
  return proto.SerializeAsString();
}

Tensor read_tensor_file(const std::filesystem::path& path, const core::Shape& bin_shape) {
  const std::string ext = path.extension().string();
  if (ext == ".npy") return read_npy(path);
  if (ext == ".pb") return read_tensor_proto(path);
  if (ext == ".bin") {
    const std::string bytes = core::read_file(path);
    Tensor t = Tensor::empty(DType::kFloat32, bin_shape);
    if (bytes.size() != t.nbytes()) {
      throw_invalid(path.string(),
                    "holds " + std::to_string(bytes.size()) + " bytes, but raw float32" + core::shape_to_string(bin_shape) +
                        " needs " + std::to_string(t.nbytes()),
                    "a .bin input is the raw float32 tensor in the model's input shape");
    }
    std::memcpy(t.raw_data(), bytes.data(), bytes.size());
    return t;
  }
  throw Error(ErrorKind::kUsage, path.string(), "has an unknown tensor file extension '" + ext + "'",
              "use .npy, .pb (ONNX TensorProto) or .bin (raw float32)");
}

}  // namespace detrq::onnx
