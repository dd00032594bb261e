// Writing and mapping CPU engine files (see engine_file.h).
#include "detrq/engine/cpu/engine_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <functional>

#include "detrq/core/allocation.h"
#include "detrq/core/error.h"

namespace detrq::engine::cpu {

namespace {

namespace fs = std::filesystem;

// The features a packed state needs: those it records, and the one its layout names ("isa=avx512vnni"),
// which is all that engines written before states recorded their features say.
std::vector<std::string> state_needs(const std::string& layout, std::vector<std::string> recorded) {
  if (const std::size_t at = layout.find("isa="); at != std::string::npos) {
    const std::size_t end = layout.find_first_of(" ,;", at);
    const std::string isa = layout.substr(at + 4, end == std::string::npos ? std::string::npos : end - at - 4);
    const auto& known = known_cpu_features();
    const bool is_feature = std::find(known.begin(), known.end(), isa) != known.end();
    if (is_feature && std::find(recorded.begin(), recorded.end(), isa) == recorded.end()) recorded.push_back(isa);
  }
  return recorded;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}
using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "engine files are little-endian");

constexpr std::size_t kPreambleBytes = 64;
constexpr std::size_t kAlign = 64;

struct Preamble {
  char magic[8];
  uint32_t version;
  uint32_t flags;
  uint64_t header_bytes;
  uint64_t payload_offset;
  uint64_t payload_bytes;
  uint64_t header_checksum;
  uint64_t payload_checksum;
  uint64_t reserved;
};
static_assert(sizeof(Preamble) == kPreambleBytes);

std::size_t align_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// A fast 64-bit checksum (four independent multiply-xor lanes): catches truncation and bit flips in the
// weights at memory speed, where a cryptographic hash would cost more than the whole load. Fed in pieces
// whose sizes are multiples of 32 bytes (all but the last), it gives what one call over the whole gives.
class Checksum {
 public:
  void update(const std::byte* data, std::size_t size) {
    std::size_t i = 0;
    for (; i + 32 <= size; i += 32) {
      for (int k = 0; k < 4; ++k) {
        uint64_t w;
        std::memcpy(&w, data + i + 8 * k, 8);
        lane_[k] = (lane_[k] ^ w) * kPrime;
      }
    }
    tail_ = data + i;
    tail_size_ = size - i;
    total_ += size;
  }
  uint64_t finish() const {
    uint64_t h = lane_[0] ^ (lane_[1] << 1) ^ (lane_[2] << 2) ^ (lane_[3] << 3);
    for (std::size_t i = 0; i < tail_size_; ++i) h = (h ^ static_cast<uint64_t>(tail_[i])) * kPrime;
    return (h ^ total_) * kPrime;
  }

 private:
  static constexpr uint64_t kPrime = 0x100000001b3ULL;
  uint64_t lane_[4] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL, 0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL};
  const std::byte* tail_ = nullptr;
  std::size_t tail_size_ = 0;
  std::size_t total_ = 0;
};

uint64_t checksum(const std::byte* data, std::size_t size) {
  Checksum c;
  c.update(data, size);
  return c.finish();
}

// The checksum of the mapping's [offset, offset + size), in pieces, each page released once read: a run then
// keeps resident only the weights it reads (an INT8 engine's int8 weights beside their packed copies are
// never read again), not the whole file.
uint64_t checksum_releasing(const core::MappedFile& file, std::size_t offset, std::size_t size) {
  constexpr std::size_t kPiece = std::size_t{4} << 20;  // a multiple of 32
  Checksum c;
  for (std::size_t done = 0; done < size;) {
    const std::size_t piece = std::min(kPiece, size - done);
    c.update(file.data() + offset + done, piece);
    // The last piece's tail is read again by finish(): keep its pages until then.
    if (done + piece < size) file.release(offset + done, piece);
    done += piece;
  }
  const uint64_t sum = c.finish();
  if (size > 0) file.release(offset + size - std::min(size, kPiece), std::min(size, kPiece));
  return sum;
}

[[noreturn]] void corrupt(const fs::path& path, const std::string& what) {
  throw_invalid(path.string(), "not a valid detrq engine file: " + what,
                "rebuild it with `detrq build-engine`; engine files are not portable between detrq versions");
}

json attribute_json(const onnx::Attribute& a, const std::function<int64_t(const core::Tensor&)>& add_tensor) {
  using K = onnx::Attribute::Kind;
  switch (a.kind) {
    case K::kFloat: return {{"kind", "f"}, {"v", a.f}};
    case K::kInt: return {{"kind", "i"}, {"v", a.i}};
    case K::kString: return {{"kind", "s"}, {"v", a.s}};
    case K::kTensor: return {{"kind", "t"}, {"v", add_tensor(a.t)}};
    case K::kFloats: return {{"kind", "floats"}, {"v", a.floats}};
    case K::kInts: return {{"kind", "ints"}, {"v", a.ints}};
    case K::kStrings: return {{"kind", "strings"}, {"v", a.strings}};
  }
  return {};
}

json value_info_json(const onnx::ValueInfo& v) {
  return {{"name", v.name}, {"dtype", static_cast<int>(v.dtype)}, {"shape", v.shape}, {"has_shape", v.has_shape}};
}
onnx::ValueInfo value_info_from(const json& j) {
  onnx::ValueInfo v;
  v.name = j.at("name").get<std::string>();
  v.dtype = static_cast<core::DType>(j.at("dtype").get<int>());
  v.shape = j.at("shape").get<core::Shape>();
  v.has_shape = j.at("has_shape").get<bool>();
  return v;
}

EngineHeader header_from(const json& h) {
  EngineHeader e;
  e.format_version = h.at("format_version").get<uint32_t>();
  e.detrq_version = h.at("detrq_version").get<std::string>();
  e.cpu_features = h.at("cpu_features").get<std::vector<std::string>>();
  e.built_on_features = h.at("built_on_features").get<std::vector<std::string>>();
  // Engines written before the target was recorded were packed for what they require.
  e.target_features = h.contains("target_features") ? h.at("target_features").get<std::vector<std::string>>()
                                                    : e.cpu_features;
  e.source_name = h.at("source_name").get<std::string>();
  e.source_sha256 = h.at("source_sha256").get<std::string>();
  e.precision = h.at("precision").get<std::string>();
  e.arena_bytes = h.at("arena_bytes").get<uint64_t>();
  e.weight_bytes = h.at("weight_bytes").get<uint64_t>();
  e.node_count = h.at("node_count").get<uint64_t>();
  e.packed_bytes = h.at("packed_bytes").get<uint64_t>();
  e.packed_state_count = h.at("packed_states").get<uint64_t>();
  return e;
}

// The graph's declared values (inputs, outputs, value_info) that no process here could hold are refused
// when the header is read, before a Session plans memory for them (and so `detrq inspect` says so too).
void check_declared_sizes(const fs::path& path, const json& model) {
  std::vector<onnx::ValueInfo> declared;
  try {
    for (const auto& v : model.at("inputs")) declared.push_back(value_info_from(v));
    for (const auto& v : model.at("outputs")) declared.push_back(value_info_from(v));
    for (const auto& [name, v] : model.at("value_info").items()) declared.push_back(value_info_from(v));
  } catch (const json::exception& e) {
    corrupt(path, std::string("graph description is malformed: ") + e.what());
  }
  for (const onnx::ValueInfo& v : declared) {
    const bool is_static = std::all_of(v.shape.begin(), v.shape.end(), [](int64_t d) { return d >= 0; });
    if (!v.has_shape || !is_static || core::dtype_size(v.dtype) == 0) continue;
    core::check_tensor_allocation(v.dtype, v.shape, path.string() + ": tensor '" + v.name + "'");
  }
}

struct Parsed {
  Preamble pre;
  json doc;
};

// Reads and checks the preamble and header of a mapped file.
Parsed parse_preamble_and_header(const fs::path& path, const std::byte* data, std::size_t size) {
  if (size < kPreambleBytes) corrupt(path, "shorter than its 64-byte preamble");
  Parsed p;
  std::memcpy(&p.pre, data, sizeof(Preamble));
  if (std::memcmp(p.pre.magic, kEngineMagic, sizeof(kEngineMagic)) != 0) {
    throw_invalid(path.string(), "not a detrq engine file (wrong magic bytes)",
                  "pass an engine made by `detrq build-engine`, or an ONNX model with --onnx");
  }
  if (p.pre.version != kEngineFormatVersion) {
    throw_invalid(path.string(),
                  "engine format version " + std::to_string(p.pre.version) + ", this detrq reads version " +
                      std::to_string(kEngineFormatVersion),
                  "rebuild the engine with this detrq's `detrq build-engine`");
  }
  if (p.pre.header_bytes > size - kPreambleBytes) corrupt(path, "header runs past the end of the file (truncated?)");
  if (p.pre.payload_offset < kPreambleBytes + p.pre.header_bytes || p.pre.payload_offset % kAlign != 0 ||
      p.pre.payload_offset > size || p.pre.payload_bytes != size - p.pre.payload_offset) {
    corrupt(path, "file size " + std::to_string(size) + " does not match its recorded layout (truncated?)");
  }
  const std::byte* header = data + kPreambleBytes;
  if (checksum(header, p.pre.header_bytes) != p.pre.header_checksum) corrupt(path, "header checksum mismatch");
  try {
    p.doc = json::parse(reinterpret_cast<const char*>(header), reinterpret_cast<const char*>(header) + p.pre.header_bytes);
  } catch (const json::exception& e) {
    corrupt(path, std::string("header is not JSON: ") + e.what());
  }
  return p;
}

}  // namespace

uint64_t engine_checksum(const std::byte* data, std::size_t size) { return checksum(data, size); }

void write_engine_file(const onnx::Model& model, const std::map<std::string, runtime::PackedState>& packed_states,
                       const EngineHeader& header, const fs::path& path) {
  // Payload: every tensor, 64-byte aligned, in a fixed order so that builds are reproducible.
  std::vector<const core::Tensor*> tensors;
  std::vector<std::size_t> offsets;
  std::size_t payload = 0;
  auto add_tensor = [&](const core::Tensor& t) -> int64_t {
    if (t.dtype() == core::DType::kString || core::dtype_size(t.dtype()) == 0) {
      throw_unsupported(path.string(), std::string("cannot store a tensor of type ") + core::dtype_name(t.dtype()));
    }
    payload = align_up(payload);
    offsets.push_back(payload);
    tensors.push_back(&t);
    payload += t.nbytes();
    return static_cast<int64_t>(tensors.size() - 1);
  };

  const onnx::Graph& g = model.graph;
  json nodes = json::array();
  for (const auto& n : g.nodes) {
    json attrs = json::object();
    for (const auto& [key, a] : n.attributes) attrs[key] = attribute_json(a, add_tensor);
    nodes.push_back({{"name", n.name}, {"op", n.op_type}, {"domain", n.domain}, {"inputs", n.inputs},
                     {"outputs", n.outputs}, {"attributes", attrs}});
  }
  json inits = json::object();
  for (const auto& [name, t] : g.initializers) inits[name] = add_tensor(t);
  json states = json::object();
  std::size_t packed = 0;
  for (const auto& [key, state] : packed_states) {
    json blobs = json::array();
    for (const auto& b : state.blobs) {
      blobs.push_back(add_tensor(b));
      packed += b.nbytes();
    }
    states[key] = {{"layout", state.layout}, {"blobs", blobs}, {"cpu_features", state.isa.names()}};
  }
  // The header requires at least what every state needs (the builder gives exactly their union).
  std::vector<std::string> required = header.cpu_features;
  for (const auto& [key, state] : packed_states) {
    for (const auto& f : missing_cpu_features(state_needs(state.layout, state.isa.names()), required)) {
      required.push_back(f);
    }
  }
  json table = json::array();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    table.push_back({{"dtype", static_cast<int>(tensors[i]->dtype())}, {"shape", tensors[i]->shape()},
                     {"offset", offsets[i]}, {"bytes", tensors[i]->nbytes()}});
  }
  json inputs = json::array(), outputs = json::array(), value_info = json::object();
  for (const auto& v : g.inputs) inputs.push_back(value_info_json(v));
  for (const auto& v : g.outputs) outputs.push_back(value_info_json(v));
  for (const auto& [name, v] : g.value_info) value_info[name] = value_info_json(v);

  json doc = {
      {"engine",
       {{"format_version", kEngineFormatVersion},
        {"detrq_version", header.detrq_version},
        {"cpu_features", required},
        {"target_features", header.target_features},
        {"built_on_features", header.built_on_features},
        {"source_name", header.source_name},
        {"source_sha256", header.source_sha256},
        {"precision", header.precision},
        {"arena_bytes", header.arena_bytes},
        {"weight_bytes", payload},
        {"packed_bytes", packed},
        {"packed_states", packed_states.size()},
        {"node_count", g.nodes.size()}}},
      {"model",
       {{"ir_version", model.ir_version},
        {"producer_name", model.producer_name},
        {"producer_version", model.producer_version},
        {"opset_imports", model.opset_imports},
        {"metadata", model.metadata},
        {"graph_name", g.name},
        {"inputs", inputs},
        {"outputs", outputs},
        {"value_info", value_info},
        {"nodes", nodes},
        {"initializers", inits},
        {"packed_states", states},
        {"tensors", table}}}};
  const std::string header_text = doc.dump();

  std::string payload_bytes(payload, '\0');
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i]->nbytes()) std::memcpy(payload_bytes.data() + offsets[i], tensors[i]->raw_data(), tensors[i]->nbytes());
  }
  Preamble pre{};
  std::memcpy(pre.magic, kEngineMagic, sizeof(kEngineMagic));
  pre.version = kEngineFormatVersion;
  pre.header_bytes = header_text.size();
  pre.payload_offset = align_up(kPreambleBytes + header_text.size());
  pre.payload_bytes = payload;
  pre.header_checksum = checksum(reinterpret_cast<const std::byte*>(header_text.data()), header_text.size());
  pre.payload_checksum = checksum(reinterpret_cast<const std::byte*>(payload_bytes.data()), payload);

  core::AtomicFile out(path);
  out.write(&pre, sizeof(pre));
  out.write(header_text);
  const std::string pad(pre.payload_offset - kPreambleBytes - header_text.size(), '\0');
  out.write(pad);
  out.write(payload_bytes);
  out.commit();
}

EngineHeader read_engine_header(const fs::path& path) {
  auto map = core::MappedFile::open(path);
  Parsed p = parse_preamble_and_header(path, map->data(), map->size());
  EngineHeader header;
  try {
    header = header_from(p.doc.at("engine"));
  } catch (const json::exception& e) {
    corrupt(path, std::string("header lacks a field: ") + e.what());
  }
  if (!p.doc.contains("model")) corrupt(path, "header has no graph description");
  check_declared_sizes(path, p.doc.at("model"));
  return header;
}

bool is_engine_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof(magic));
  return in.gcount() == sizeof(magic) && std::memcmp(magic, kEngineMagic, sizeof(magic)) == 0;
}

EngineFile read_engine_file(const fs::path& path, const std::vector<std::string>& available_features) {
  EngineFile ef;
  ef.mapping = core::MappedFile::open(path);
  const std::byte* data = ef.mapping->data();
  Parsed p = parse_preamble_and_header(path, data, ef.mapping->size());
  try {
    ef.header = header_from(p.doc.at("engine"));
  } catch (const json::exception& e) {
    corrupt(path, std::string("header lacks a field: ") + e.what());
  }
  // The CPU test comes before the weight checksum: it is the more useful message of the two.
  const auto missing = missing_cpu_features(ef.header.cpu_features, available_features);
  if (!missing.empty()) {
    const std::string have = join(available_features);
    throw_unsupported(path.string(),
                      "engine was built for CPU features this CPU lacks: " + join(missing) + " (this CPU has: " +
                          (have.empty() ? "none of those detrq uses" : have) +
                          (available_features == host_cpu_features() ? "" : ", as narrowed by --cpu-features") + ")",
                      "build the engine with `--cpu-features` naming only what the running CPU has");
  }
  if (!p.doc.contains("model")) corrupt(path, "header has no graph description");
  check_declared_sizes(path, p.doc.at("model"));
  const std::byte* payload = data + p.pre.payload_offset;
  if (checksum_releasing(*ef.mapping, p.pre.payload_offset, p.pre.payload_bytes) != p.pre.payload_checksum) {
    corrupt(path, "weights checksum mismatch");
  }

  try {
    const json& m = p.doc.at("model");
    onnx::Model& model = ef.model;
    model.ir_version = m.at("ir_version").get<int64_t>();
    model.producer_name = m.at("producer_name").get<std::string>();
    model.producer_version = m.at("producer_version").get<std::string>();
    model.opset_imports = m.at("opset_imports").get<std::map<std::string, int64_t>>();
    model.metadata = m.at("metadata").get<std::map<std::string, std::string>>();
    onnx::Graph& g = model.graph;
    g.name = m.at("graph_name").get<std::string>();

    std::vector<core::Tensor> tensors;
    std::shared_ptr<const void> keep(ef.mapping, ef.mapping.get());
    for (const auto& t : m.at("tensors")) {
      const auto dtype = static_cast<core::DType>(t.at("dtype").get<int>());
      const auto shape = t.at("shape").get<core::Shape>();
      const auto offset = t.at("offset").get<uint64_t>();
      const auto bytes = t.at("bytes").get<uint64_t>();
      // The element count is multiplied out with an overflow check: dimensions whose product wraps around
      // could otherwise match a small `bytes` and make a view far larger than the file.
      uint64_t numel = 1;
      for (int64_t d : shape) {
        if (d < 0) corrupt(path, "negative tensor dimension");
        if (d != 0 && numel > p.pre.payload_bytes / static_cast<uint64_t>(d)) {
          corrupt(path, "a tensor's shape " + core::shape_to_string(shape) + " is larger than the file");
        }
        numel *= static_cast<uint64_t>(d);
      }
      if (core::dtype_size(dtype) == 0 || numel > p.pre.payload_bytes / core::dtype_size(dtype) ||
          numel * core::dtype_size(dtype) != bytes ||
          offset % kAlign != 0 || offset > p.pre.payload_bytes || bytes > p.pre.payload_bytes - offset) {
        corrupt(path, "a tensor's recorded type, shape or place does not fit the file");
      }
      // Weights are read-only: the mapping is, and the runtime never writes initializers.
      tensors.push_back(core::Tensor::view(dtype, shape, const_cast<std::byte*>(payload + offset), keep));
    }
    auto tensor_at = [&](const json& id) -> core::Tensor {
      const auto i = id.get<int64_t>();
      if (i < 0 || static_cast<std::size_t>(i) >= tensors.size()) corrupt(path, "a tensor reference is out of range");
      return tensors[static_cast<std::size_t>(i)];
    };
    for (const auto& v : m.at("inputs")) g.inputs.push_back(value_info_from(v));
    for (const auto& v : m.at("outputs")) g.outputs.push_back(value_info_from(v));
    for (const auto& [name, v] : m.at("value_info").items()) g.value_info[name] = value_info_from(v);
    for (const auto& [name, id] : m.at("initializers").items()) g.initializers[name] = tensor_at(id);
    for (const auto& [key, js] : m.at("packed_states").items()) {
      runtime::PackedState state;
      state.layout = js.at("layout").get<std::string>();
      for (const auto& id : js.at("blobs")) state.blobs.push_back(tensor_at(id));
      // What the state's code needs, refused here with the same hint as the engine's own feature list
      // rather than deep in a kernel.
      const std::vector<std::string> needs = state_needs(
          state.layout, js.contains("cpu_features") ? js.at("cpu_features").get<std::vector<std::string>>()
                                                    : std::vector<std::string>{});
      const auto lacking = missing_cpu_features(needs, available_features);
      if (!lacking.empty()) {
        throw_unsupported(path.string(),
                          "packed weights of '" + key + "' (layout '" + state.layout + "') need CPU features " +
                              join(lacking) + ", which this CPU (or the --cpu-features asked for) lacks",
                          "build the engine with `--cpu-features` naming only what the running CPU has");
      }
      for (const auto& f : needs) {
        const auto& known = known_cpu_features();
        if (std::find(known.begin(), known.end(), f) == known.end()) corrupt(path, "unknown CPU feature '" + f + "'");
        state.isa = state.isa.united(runtime::CpuTarget::parse(f));
      }
      ef.packed_states[key] = std::move(state);
    }
    for (const auto& jn : m.at("nodes")) {
      onnx::Node n;
      n.name = jn.at("name").get<std::string>();
      n.op_type = jn.at("op").get<std::string>();
      n.domain = jn.at("domain").get<std::string>();
      n.inputs = jn.at("inputs").get<std::vector<std::string>>();
      n.outputs = jn.at("outputs").get<std::vector<std::string>>();
      for (const auto& [key, ja] : jn.at("attributes").items()) {
        onnx::Attribute a;
        const std::string kind = ja.at("kind").get<std::string>();
        const json& v = ja.at("v");
        using K = onnx::Attribute::Kind;
        if (kind == "f") a.kind = K::kFloat, a.f = v.get<float>();
        else if (kind == "i") a.kind = K::kInt, a.i = v.get<int64_t>();
        else if (kind == "s") a.kind = K::kString, a.s = v.get<std::string>();
        else if (kind == "t") a.kind = K::kTensor, a.t = tensor_at(v);
        else if (kind == "floats") a.kind = K::kFloats, a.floats = v.get<std::vector<float>>();
        else if (kind == "ints") a.kind = K::kInts, a.ints = v.get<std::vector<int64_t>>();
        else if (kind == "strings") a.kind = K::kStrings, a.strings = v.get<std::vector<std::string>>();
        else corrupt(path, "unknown attribute kind '" + kind + "'");
        n.attributes[key] = std::move(a);
      }
      g.nodes.push_back(std::move(n));
    }
  } catch (const json::exception& e) {
    corrupt(path, std::string("graph description is malformed: ") + e.what());
  }
  return ef;
}

runtime::Session engine_session(EngineFile engine, const fs::path& path, runtime::SessionOptions options) {
  options.packed_states = std::move(engine.packed_states);
  try {
    return runtime::Session(std::move(engine.model), std::move(options));
  } catch (const Error& e) {
    throw Error(e.kind(), e.where().empty() ? path.string() : path.string() + ": " + e.where(), e.problem(), e.hint());
  }
}

}  // namespace detrq::engine::cpu
