// The in-memory ONNX IR: typed attribute getters and opset lookup.
#include "detrq/onnx/model.h"

#include "detrq/core/error.h"

namespace detrq::onnx {
namespace {
const char* kind_name(Attribute::Kind kind) {
  switch (kind) {
    case Attribute::Kind::kFloat: return "float";
    case Attribute::Kind::kInt: return "int";
    case Attribute::Kind::kString: return "string";
    case Attribute::Kind::kTensor: return "tensor";
    case Attribute::Kind::kFloats: return "floats";
    case Attribute::Kind::kInts: return "ints";
    case Attribute::Kind::kStrings: return "strings";
  }
  return "unknown";
}

// The attribute `key` when present with `kind`; nullptr when absent; throws when of another kind.
const Attribute* typed(const Node& node, const std::string& key, Attribute::Kind kind) {
  auto it = node.attributes.find(key);
  if (it == node.attributes.end()) return nullptr;
  if (it->second.kind != kind) {
    throw_invalid(node.describe(),
                  "attribute '" + key + "' is " + kind_name(it->second.kind) + ", expected " + kind_name(kind),
                  "the model does not follow the operator's specification");
  }
  return &it->second;
}
}  // namespace

int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
  const Attribute* a = typed(*this, key, Attribute::Kind::kInt);
  return a ? a->i : fallback;
}

float Node::attr_float(const std::string& key, float fallback) const {
  const Attribute* a = typed(*this, key, Attribute::Kind::kFloat);
  return a ? a->f : fallback;
}

std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
  const Attribute* a = typed(*this, key, Attribute::Kind::kString);
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::attr_ints(const std::string& key, const std::vector<int64_t>& fallback) const {
  const Attribute* a = typed(*this, key, Attribute::Kind::kInts);
  return a ? a->ints : fallback;
}

std::vector<float> Node::attr_floats(const std::string& key, const std::vector<float>& fallback) const {
  const Attribute* a = typed(*this, key, Attribute::Kind::kFloats);
  return a ? a->floats : fallback;
}

const Tensor* Node::attr_tensor(const std::string& key) const {
  const Attribute* a = typed(*this, key, Attribute::Kind::kTensor);
  return a ? &a->t : nullptr;
}

std::string Node::describe() const {
  if (!name.empty()) return op_type + " '" + name + "'";
  for (const auto& out : outputs) {
    if (!out.empty()) return op_type + " (output '" + out + "')";
  }
  return op_type + " (unnamed)";
}

int64_t Model::opset(const std::string& domain) const {
  const std::string key = domain == "ai.onnx" ? std::string() : domain;
  auto it = opset_imports.find(key);
  return it == opset_imports.end() ? 0 : it->second;
}

}  // namespace detrq::onnx
