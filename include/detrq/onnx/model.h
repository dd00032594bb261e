// The ONNX graph IR detrq works on: a plain, mutable copy of the parts of an ONNX ModelProto that
// detrq uses, loaded from and saved to .onnx files (inline weights or external data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "detrq/core/tensor.h"

namespace detrq::onnx {

using core::DType;
using core::Shape;
using core::Tensor;

struct Graph;

// One node attribute. Subgraph attributes (If/Loop bodies) are not used by DETR exports and are
// refused at load.
struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings };
  Kind kind = Kind::kInt;
  float f = 0.0F;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" and "ai.onnx" both mean the default domain
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::map<std::string, Attribute> attributes;

  bool has_attr(const std::string& key) const { return attributes.count(key) != 0; }
  // Typed getters: return `fallback` when absent; throw kInvalidInput naming the node when the
  // attribute exists with another kind.
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  float attr_float(const std::string& key, float fallback) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key, const std::vector<int64_t>& fallback = {}) const;
  std::vector<float> attr_floats(const std::string& key, const std::vector<float>& fallback = {}) const;
  const Tensor* attr_tensor(const std::string& key) const;  // nullptr when absent
  // "Conv 'name'" for messages.
  std::string describe() const;
};

// Dtype and shape of a graph value. A dimension of -1 is unknown (symbolic or absent).
struct ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
  bool has_shape = false;  // false when the model declares no shape at all
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;  // in file order; Session sorts them topologically
  std::vector<ValueInfo> inputs;   // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
  std::map<std::string, ValueInfo> value_info;  // intermediate annotations, if any
  std::map<std::string, Tensor> initializers;   // weights and constants
};

struct Model {
  int64_t ir_version = 8;
  std::string producer_name;
  std::string producer_version;
  std::map<std::string, int64_t> opset_imports;  // domain ("" = default) -> version
  std::map<std::string, std::string> metadata;   // metadata_props
  Graph graph;

  int64_t opset(const std::string& domain = "") const;  // 0 when not imported
};

// Loads a model; external data files are resolved against the model's folder. Errors name the file; a detrq
// engine file is refused as one (kInvalidInput, "is a detrq engine file, not an ONNX model").
Model load_model(const std::filesystem::path& path);
// Parses a model from memory (as a fuzzer does); `base_dir` resolves external data ("" refuses it).
Model parse_model(const void* data, std::size_t size, const std::string& source_name,
                  const std::filesystem::path& base_dir = {});
// Protobuf refuses messages of 2 GiB and more; models whose weights exceed this are saved with
// external data.
inline constexpr std::size_t kInlineWeightLimitBytes = std::size_t{1800} << 20;
// Writes a model atomically. When its weights exceed `inline_limit_bytes`, every initializer of
// 1 KiB or more goes to `<file>.data` beside it (4 KiB aligned); otherwise everything is inline.
void save_model(const Model& model, const std::filesystem::path& path,
                std::size_t inline_limit_bytes = kInlineWeightLimitBytes);
// Serializes to ONNX protobuf bytes (inline weights).
std::string serialize_model(const Model& model);

}  // namespace detrq::onnx
