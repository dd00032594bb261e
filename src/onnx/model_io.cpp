// Loading and saving ONNX models through Debian's libonnx protobuf classes: ModelProto <-> detrq's IR.
#include <onnx/onnx_pb.h>

#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <set>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/onnx/model.h"
#include "tensor_proto.h"

namespace detrq::onnx {
namespace {
using detail::ExternalData;

std::string canonical_domain(const std::string& domain) { return domain == "ai.onnx" ? std::string() : domain; }

ValueInfo value_info_from_proto(const ::onnx::ValueInfoProto& proto, const std::string& where) {
  ValueInfo info;
  info.name = proto.name();
  if (!proto.has_type()) return info;  // intermediate annotations may omit the type
  if (!proto.type().has_tensor_type()) {
    throw_unsupported(where + ": value '" + proto.name() + "'", "is not a tensor (sequence, map or optional)",
                      "detrq runs graphs of plain tensors");
  }
  const auto& tt = proto.type().tensor_type();
  info.dtype = static_cast<DType>(tt.elem_type());
  if (tt.has_shape()) {
    info.has_shape = true;
    for (const auto& dim : tt.shape().dim()) {
      info.shape.push_back(dim.has_dim_value() && dim.dim_value() >= 0 ? dim.dim_value() : -1);
    }
  }
  return info;
}

Attribute attribute_from_proto(const ::onnx::AttributeProto& proto, const std::string& where, ExternalData* external) {
  Attribute a;
  auto type = proto.type();
  if (!proto.ref_attr_name().empty()) {
    throw_unsupported(where, "attribute '" + proto.name() + "' refers to a function attribute",
                      "model-local functions are not supported");
  }
  if (type == ::onnx::AttributeProto::UNDEFINED) {  // very old files: infer the kind from the field set
    if (proto.has_f()) type = ::onnx::AttributeProto::FLOAT;
    else if (proto.has_i()) type = ::onnx::AttributeProto::INT;
    else if (proto.has_s()) type = ::onnx::AttributeProto::STRING;
    else if (proto.has_t()) type = ::onnx::AttributeProto::TENSOR;
    else if (proto.floats_size()) type = ::onnx::AttributeProto::FLOATS;
    else if (proto.ints_size()) type = ::onnx::AttributeProto::INTS;
    else if (proto.strings_size()) type = ::onnx::AttributeProto::STRINGS;
  }
  switch (type) {
    case ::onnx::AttributeProto::FLOAT: a.kind = Attribute::Kind::kFloat; a.f = proto.f(); break;
    case ::onnx::AttributeProto::INT: a.kind = Attribute::Kind::kInt; a.i = proto.i(); break;
    case ::onnx::AttributeProto::STRING: a.kind = Attribute::Kind::kString; a.s = proto.s(); break;
    case ::onnx::AttributeProto::TENSOR:
      a.kind = Attribute::Kind::kTensor;
      a.t = detail::tensor_from_proto(proto.t(), where + ": attribute '" + proto.name() + "'", external);
      break;
    case ::onnx::AttributeProto::FLOATS:
      a.kind = Attribute::Kind::kFloats;
      a.floats.assign(proto.floats().begin(), proto.floats().end());
      break;
    case ::onnx::AttributeProto::INTS:
      a.kind = Attribute::Kind::kInts;
      a.ints.assign(proto.ints().begin(), proto.ints().end());
      break;
    case ::onnx::AttributeProto::STRINGS:
      a.kind = Attribute::Kind::kStrings;
      a.strings.assign(proto.strings().begin(), proto.strings().end());
      break;
    default:
      throw_unsupported(where, "attribute '" + proto.name() + "' has type " +
                                   ::onnx::AttributeProto_AttributeType_Name(type),
                        "subgraphs, sparse tensors and type attributes are not supported");
  }
  return a;
}

Model model_from_proto(::onnx::ModelProto& proto, const std::string& source, ExternalData* external) {
  if (!proto.has_graph()) throw_invalid(source, "has no graph", "is this an ONNX model?");
  Model model;
  model.ir_version = proto.ir_version();
  model.producer_name = proto.producer_name();
  model.producer_version = proto.producer_version();
  for (const auto& op : proto.opset_import()) model.opset_imports[canonical_domain(op.domain())] = op.version();
  for (const auto& kv : proto.metadata_props()) model.metadata[kv.key()] = kv.value();

  auto& g = *proto.mutable_graph();
  Graph& graph = model.graph;
  graph.name = g.name();
  if (g.sparse_initializer_size()) throw_unsupported(source, "sparse initializers are not supported");
  for (auto& init : *g.mutable_initializer()) {
    if (init.name().empty()) throw_invalid(source, "an initializer has no name", "the file is corrupt");
    graph.initializers[init.name()] =
        detail::tensor_from_proto(init, source + ": initializer '" + init.name() + "'", external);
    // Drop the protobuf copy now so that loading does not hold the weights twice.
    std::string().swap(*init.mutable_raw_data());
  }
  for (const auto& in : g.input()) {
    if (graph.initializers.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
    graph.inputs.push_back(value_info_from_proto(in, source));
  }
  for (const auto& out : g.output()) graph.outputs.push_back(value_info_from_proto(out, source));
  for (const auto& vi : g.value_info()) graph.value_info[vi.name()] = value_info_from_proto(vi, source);
  graph.nodes.reserve(static_cast<std::size_t>(g.node_size()));
  for (const auto& np : g.node()) {
    Node node;
    node.name = np.name();
    node.op_type = np.op_type();
    node.domain = canonical_domain(np.domain());
    node.inputs.assign(np.input().begin(), np.input().end());
    node.outputs.assign(np.output().begin(), np.output().end());
    const std::string where = source + ": " + node.describe();
    for (const auto& ap : np.attribute()) node.attributes[ap.name()] = attribute_from_proto(ap, where, external);
    graph.nodes.push_back(std::move(node));
  }
  return model;
}

void value_info_to_proto(const ValueInfo& info, ::onnx::ValueInfoProto* proto) {
  proto->set_name(info.name);
  if (info.dtype == DType::kUndefined) return;
  auto* tt = proto->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(info.dtype));
  if (info.has_shape) {
    auto* shape = tt->mutable_shape();
    for (int64_t d : info.shape) {
      auto* dim = shape->add_dim();
      if (d >= 0) dim->set_dim_value(d);
    }
  }
}

void attribute_to_proto(const std::string& name, const Attribute& a, ::onnx::AttributeProto* proto) {
  proto->set_name(name);
  switch (a.kind) {
    case Attribute::Kind::kFloat: proto->set_type(::onnx::AttributeProto::FLOAT); proto->set_f(a.f); break;
    case Attribute::Kind::kInt: proto->set_type(::onnx::AttributeProto::INT); proto->set_i(a.i); break;
    case Attribute::Kind::kString: proto->set_type(::onnx::AttributeProto::STRING); proto->set_s(a.s); break;
    case Attribute::Kind::kTensor:
      proto->set_type(::onnx::AttributeProto::TENSOR);
      detail::tensor_to_proto(a.t, "", proto->mutable_t());
      break;
    case Attribute::Kind::kFloats:
      proto->set_type(::onnx::AttributeProto::FLOATS);
      for (float f : a.floats) proto->add_floats(f);
      break;
    case Attribute::Kind::kInts:
      proto->set_type(::onnx::AttributeProto::INTS);
      for (int64_t i : a.ints) proto->add_ints(i);
      break;
    case Attribute::Kind::kStrings:
      proto->set_type(::onnx::AttributeProto::STRINGS);
      for (const auto& s : a.strings) proto->add_strings(s);
      break;
  }
}

// Builds the ModelProto with every tensor inline.
::onnx::ModelProto model_to_proto(const Model& model) {
  ::onnx::ModelProto proto;
  proto.set_ir_version(model.ir_version);
  proto.set_producer_name(model.producer_name);
  proto.set_producer_version(model.producer_version);
  for (const auto& [domain, version] : model.opset_imports) {
    auto* op = proto.add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }
  for (const auto& [key, value] : model.metadata) {
    auto* kv = proto.add_metadata_props();
    kv->set_key(key);
    kv->set_value(value);
  }
  auto* g = proto.mutable_graph();
  g->set_name(model.graph.name);
  for (const auto& node : model.graph.nodes) {
    auto* np = g->add_node();
    np->set_name(node.name);
    np->set_op_type(node.op_type);
    if (!node.domain.empty()) np->set_domain(node.domain);
    for (const auto& in : node.inputs) np->add_input(in);
    for (const auto& out : node.outputs) np->add_output(out);
    for (const auto& [name, attr] : node.attributes) attribute_to_proto(name, attr, np->add_attribute());
  }
  for (const auto& in : model.graph.inputs) value_info_to_proto(in, g->add_input());
  for (const auto& out : model.graph.outputs) value_info_to_proto(out, g->add_output());
  for (const auto& [name, info] : model.graph.value_info) value_info_to_proto(info, g->add_value_info());
  for (const auto& [name, tensor] : model.graph.initializers) detail::tensor_to_proto(tensor, name, g->add_initializer());
  return proto;
}

// Tensors at least this large go to the external data file when the model is too big to be inline.
constexpr std::size_t kExternalThresholdBytes = 1024;
constexpr std::size_t kExternalAlignment = 4096;
}  // namespace

namespace {
::onnx::ModelProto parse_proto(const void* data, std::size_t size, const std::string& source_name) {
  if (size > static_cast<std::size_t>(INT_MAX)) {
    throw_unsupported(source_name, "is larger than 2 GiB", "store the weights as ONNX external data");
  }
  ::onnx::ModelProto proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) {
    throw_invalid(source_name, "is not a valid ONNX model (protobuf parsing failed)", "the file is truncated or corrupt");
  }
  return proto;
}
}  // namespace

Model parse_model(const void* data, std::size_t size, const std::string& source_name,
                  const std::filesystem::path& base_dir) {
  ::onnx::ModelProto proto = parse_proto(data, size, source_name);
  ExternalData external(base_dir);
  return model_from_proto(proto, source_name, &external);
}

Model load_model(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw_io(path.string(), "is a folder, not an ONNX file");
  // Stream the file into the message (no second copy of it in memory); initializers then move
  // into tensors one at a time, so the weights are never resident twice.
  ::onnx::ModelProto proto;
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_io(path.string(), std::string("cannot open: ") + std::strerror(errno));
    google::protobuf::io::FileInputStream stream(fd);
    stream.SetCloseOnDelete(true);
    if (std::filesystem::file_size(path, ec) > static_cast<std::uintmax_t>(INT_MAX) && !ec) {
      throw_unsupported(path.string(), "is larger than 2 GiB", "store the weights as ONNX external data");
    }
    if (!proto.ParseFromZeroCopyStream(&stream)) {
      if (stream.GetErrno() != 0) throw_io(path.string(), std::string("read failed: ") + std::strerror(stream.GetErrno()));
      // A detrq engine file (it starts with the engine magic, engine/cpu/engine_file.h) is named as one.
      char magic[8] = {};
      const int again = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      const bool engine = again >= 0 && ::pread(again, magic, sizeof magic, 0) == static_cast<ssize_t>(sizeof magic) &&
                          std::memcmp(magic, "DETRQENG", sizeof magic) == 0;
      if (again >= 0) ::close(again);
      if (engine) {
        throw_invalid(path.string(), "is a detrq engine file, not an ONNX model",
                      "this needs the ONNX model the engine was built from; detect --engine, eval --engine, "
                      "inspect and run take engine files");
      }
      throw_invalid(path.string(), "is not a valid ONNX model (protobuf parsing failed)",
                    "the file is truncated or corrupt");
    }
  }
  std::filesystem::path base = path.parent_path();
  if (base.empty()) base = ".";
  ExternalData external(base);
  return model_from_proto(proto, path.string(), &external);
}

std::string serialize_model(const Model& model) {
  ::onnx::ModelProto proto = model_to_proto(model);
  if (proto.ByteSizeLong() >= static_cast<std::size_t>(INT_MAX)) {
    throw_unsupported("model", "is too large to serialize inline (2 GiB protobuf limit)",
                      "save it to a file, which stores weights externally");
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw Error(ErrorKind::kInternal, "model", "protobuf serialization failed");
  return bytes;
}

void save_model(const Model& model, const std::filesystem::path& path, std::size_t inline_limit_bytes) {
  std::size_t weight_bytes = 0;
  for (const auto& [name, t] : model.graph.initializers) weight_bytes += t.nbytes();
  if (weight_bytes <= inline_limit_bytes) {
    core::write_file_atomic(path, serialize_model(model));
    return;
  }
  // Too large for one protobuf message: large initializers go to "<file>.data" beside the model.
  ::onnx::ModelProto proto = model_to_proto(model);
  std::filesystem::path data_path = path;
  data_path += ".data";
  const std::string location = data_path.filename().string();
  core::AtomicFile data_file(data_path);
  uint64_t offset = 0;
  static const char kZeros[kExternalAlignment] = {};
  for (auto& init : *proto.mutable_graph()->mutable_initializer()) {
    if (init.raw_data().size() < kExternalThresholdBytes) continue;
    const uint64_t pad = (kExternalAlignment - offset % kExternalAlignment) % kExternalAlignment;
    data_file.write(kZeros, pad);
    offset += pad;
    data_file.write(init.raw_data().data(), init.raw_data().size());
    init.set_data_location(::onnx::TensorProto::EXTERNAL);
    auto add = [&](const char* key, const std::string& value) {
      auto* e = init.add_external_data();
      e->set_key(key);
      e->set_value(value);
    };
    add("location", location);
    add("offset", std::to_string(offset));
    add("length", std::to_string(init.raw_data().size()));
    offset += init.raw_data().size();
    init.clear_raw_data();
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw Error(ErrorKind::kInternal, path.string(), "protobuf serialization failed");
  data_file.commit();
  core::write_file_atomic(path, bytes);
}

}  // namespace detrq::onnx
