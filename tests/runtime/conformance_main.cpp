// ONNX backend node conformance: runs every test in libonnx-testdata's data/node folder whose
// operators are all registered in detrq, compares every output with the reference (numpy's
// allclose with rtol 1e-3, atol 1e-5; exact for integers and bools), prints
// "conformance: N ran, M passed" and lists the failures. Exits non-zero when a test that is not
// excluded (conformance_exclusions.txt, one "name  # reason" per line) fails.
// detrq plans static shapes, so inputs that decide shapes (Reshape's shape, Resize's scales, ...) must
// be constants: a test whose graph does not plan with every input fed at run time is planned again
// with all inputs but the first baked in as initializers, then with all of them (the kernels then
// run during constant folding). Tests with string tensors in their signature are skipped, and so are
// tests of operators without a kernel; so that dropping a registration cannot silently drop its tests,
// every operator in REQUIRED_OPS_FILE (one op type per line, '#' comments) must have a kernel, and a
// missing NODE_DIR is a failure, not "nothing to run".
//   conformance_main [NODE_DIR] [EXCLUSIONS_FILE] [REQUIRED_OPS_FILE] [-v]
//   conformance_main --registered-ops     (prints the registered op types, to write that file)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/onnx/graph_passes.h"
#include "detrq/onnx/tensor_file.h"
#include "detrq/runtime/kernel.h"
#include "detrq/runtime/session.h"

namespace fs = std::filesystem;
using detrq::core::DType;
using detrq::core::Tensor;

namespace {

double element(const Tensor& t, int64_t i) {
  const void* p = t.raw_data();
  switch (t.dtype()) {
    case DType::kFloat32: return static_cast<const float*>(p)[i];
    case DType::kFloat64: return static_cast<const double*>(p)[i];
    case DType::kFloat16: return detrq::core::half_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::kBFloat16: return detrq::core::bfloat16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::kInt8: return static_cast<const int8_t*>(p)[i];
    case DType::kUInt8: case DType::kBool: return static_cast<const uint8_t*>(p)[i];
    case DType::kInt16: return static_cast<const int16_t*>(p)[i];
    case DType::kUInt16: return static_cast<const uint16_t*>(p)[i];
    case DType::kInt32: return static_cast<const int32_t*>(p)[i];
    case DType::kUInt32: return static_cast<const uint32_t*>(p)[i];
    case DType::kInt64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::kUInt64: return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    default: return 0.0;
  }
}

// Empty when equal within tolerance, else what differs.
std::string compare(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype()) {
    return std::string("dtype ") + detrq::core::dtype_name(got.dtype()) + ", expected " + detrq::core::dtype_name(want.dtype());
  }
  if (got.shape() != want.shape()) {
    return "shape " + detrq::core::shape_to_string(got.shape()) + ", expected " + detrq::core::shape_to_string(want.shape());
  }
  const bool is_float = detrq::core::dtype_is_float(got.dtype());
  int64_t bad = 0;
  std::string first;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = element(got, i);
    const double b = element(want, i);
    bool ok;
    if (is_float) {
      ok = (std::isnan(a) && std::isnan(b)) || a == b || std::fabs(a - b) <= 1e-5 + 1e-3 * std::fabs(b);
    } else if (got.dtype() == DType::kInt64 || got.dtype() == DType::kUInt64) {
      ok = std::memcmp(static_cast<const char*>(got.raw_data()) + 8 * i, static_cast<const char*>(want.raw_data()) + 8 * i, 8) == 0;
    } else {
      ok = a == b;
    }
    if (!ok && bad++ == 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %lld is %.9g, expected %.9g", static_cast<long long>(i), a, b);
      first = buf;
    }
  }
  if (bad == 0) return {};
  return std::to_string(bad) + " of " + std::to_string(got.numel()) + " elements differ; " + first;
}

// Operators in the required list that have no registered kernel (at any opset).
std::vector<std::string> missing_required_ops(const fs::path& path) {
  const auto registered = detrq::runtime::KernelRegistry::builtin().op_types("");
  const std::set<std::string> have(registered.begin(), registered.end());
  std::vector<std::string> missing;
  std::ifstream in(path);
  if (!in) return {"(cannot read " + path.string() + ")"};
  std::string line;
  while (std::getline(in, line)) {
    std::string op = line.substr(0, line.find('#'));
    op.erase(op.find_last_not_of(" \t") + 1);
    op.erase(0, op.find_first_not_of(" \t"));
    if (!op.empty() && !have.count(op)) missing.push_back(op);
  }
  return missing;
}

std::map<std::string, std::string> read_exclusions(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto hash = line.find('#');
    std::string name = line.substr(0, hash);
    name.erase(name.find_last_not_of(" \t") + 1);
    name.erase(0, name.find_first_not_of(" \t"));
    if (name.empty()) continue;
    out[name] = hash == std::string::npos ? "" : line.substr(hash + 1);
  }
  return out;
}

// The test data stores bfloat16 as uint16 bit patterns; read them as the model declares.
Tensor as_declared(const Tensor& t, DType declared) {
  if (t.dtype() == DType::kUInt16 && (declared == DType::kBFloat16 || declared == DType::kFloat16)) {
    return Tensor::view(declared, t.shape(), const_cast<void*>(t.raw_data()), std::make_shared<Tensor>(t));
  }
  return t;
}

enum class Outcome { kSkipped, kPassed, kFailed };

Outcome run_test(const fs::path& dir, std::string& why) {
  detrq::onnx::Model model;
  try {
    model = detrq::onnx::load_model(dir / "model.onnx");
  } catch (const detrq::Error& e) {
    why = e.what();
    return e.kind() == detrq::ErrorKind::kUnsupported ? Outcome::kSkipped : Outcome::kFailed;
  }
  // Only tests whose every operator has a registered kernel run.
  detrq::onnx::Graph probe;
  probe.nodes = model.graph.nodes;
  detrq::onnx::constants_to_initializers(probe);
  const auto& registry = detrq::runtime::KernelRegistry::builtin();
  for (const auto& node : probe.nodes) {
    if (!registry.find(node.domain, node.op_type, static_cast<int>(model.opset(node.domain)))) {
      why = "no kernel for " + node.op_type;
      return Outcome::kSkipped;
    }
  }
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  }
  std::sort(sets.begin(), sets.end());
  for (const auto& io : {model.graph.inputs, model.graph.outputs}) {
    for (const auto& v : io) {
      if (v.dtype == DType::kString) {
        why = "string tensors are not supported";
        return Outcome::kSkipped;
      }
    }
  }
  for (const auto& set : sets) {
    std::vector<Tensor> data;
    for (std::size_t i = 0; i < model.graph.inputs.size(); ++i) {
      const fs::path f = set / ("input_" + std::to_string(i) + ".pb");
      if (!fs::exists(f)) {
        why = "no data for input " + model.graph.inputs[i].name;
        return Outcome::kSkipped;
      }
      Tensor t;
      try {
        t = detrq::onnx::read_tensor_proto(f);
      } catch (const detrq::Error& e) {
        why = e.what();
        return e.kind() == detrq::ErrorKind::kUnsupported ? Outcome::kSkipped : Outcome::kFailed;
      }
      data.push_back(as_declared(t, model.graph.inputs[i].dtype));
    }
    std::optional<detrq::runtime::Session> session;
    std::map<std::string, Tensor> inputs;
    std::string plan_error;
    for (std::size_t baked = 0; baked <= 2 && !session; ++baked) {
      detrq::onnx::Model variant = model;
      detrq::runtime::SessionOptions options;
      options.threads = 2;
      inputs.clear();
      variant.graph.inputs.clear();
      for (std::size_t i = 0; i < data.size(); ++i) {
        const auto& info = model.graph.inputs[i];
        const bool bake = (baked == 1 && i > 0) || baked == 2;
        if (bake) {
          variant.graph.initializers[info.name] = data[i];
        } else {
          variant.graph.inputs.push_back(info);
          options.input_shapes[info.name] = data[i].shape();
          inputs[info.name] = data[i];
        }
      }
      try {
        session.emplace(std::move(variant), options);
      } catch (const std::exception& e) {
        if (baked == 0) plan_error = e.what();
      }
    }
    if (!session) {
      why = set.filename().string() + ": " + plan_error;
      return Outcome::kFailed;
    }
    try {
      const auto outputs = session->run(inputs);
      for (std::size_t i = 0; i < model.graph.outputs.size(); ++i) {
        const auto& info = model.graph.outputs[i];
        const Tensor want = as_declared(
            detrq::onnx::read_tensor_proto(set / ("output_" + std::to_string(i) + ".pb")), info.dtype);
        const std::string diff = compare(outputs.at(info.name), want);
        if (!diff.empty()) {
          why = set.filename().string() + ": output '" + info.name + "': " + diff;
          return Outcome::kFailed;
        }
      }
    } catch (const std::exception& e) {
      why = set.filename().string() + ": " + e.what();
      return Outcome::kFailed;
    }
  }
  return Outcome::kPassed;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path node_dir = "/usr/share/libonnx-testdata/data/node";
  fs::path exclusions_path;
  fs::path required_ops_path;
  bool verbose = false;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-v") {
      verbose = true;
    } else if (a == "--registered-ops") {
      for (const auto& op : detrq::runtime::KernelRegistry::builtin().op_types("")) std::printf("%s\n", op.c_str());
      return 0;
    } else {
      positional.push_back(a);
    }
  }
  if (!positional.empty()) node_dir = positional[0];
  if (positional.size() > 1) exclusions_path = positional[1];
  if (positional.size() > 2) required_ops_path = positional[2];
  if (!fs::is_directory(node_dir)) {
    std::printf("conformance: FAILED: %s is absent (scripts/setup.sh installs libonnx-testdata)\n", node_dir.c_str());
    return 1;
  }
  if (!required_ops_path.empty()) {
    const auto missing = missing_required_ops(required_ops_path);
    for (const auto& op : missing) {
      std::printf("FAILED required operator %s has no kernel (%s)\n", op.c_str(), required_ops_path.c_str());
    }
    if (!missing.empty()) return 1;
  }
  const auto exclusions = exclusions_path.empty() ? std::map<std::string, std::string>{} : read_exclusions(exclusions_path);
  std::vector<fs::path> tests;
  for (const auto& e : fs::directory_iterator(node_dir)) {
    if (fs::exists(e.path() / "model.onnx")) tests.push_back(e.path());
  }
  std::sort(tests.begin(), tests.end());
  int ran = 0, passed = 0, skipped = 0, excluded_failures = 0;
  std::vector<std::string> failures;
  std::set<std::string> excluded_passing;
  for (const auto& dir : tests) {
    const std::string name = dir.filename().string();
    std::string why;
    const Outcome outcome = run_test(dir, why);
    if (outcome == Outcome::kSkipped) {
      ++skipped;
      if (verbose) std::printf("skip %s: %s\n", name.c_str(), why.c_str());
      continue;
    }
    ++ran;
    if (outcome == Outcome::kPassed) {
      ++passed;
      if (exclusions.count(name)) excluded_passing.insert(name);
      if (verbose) std::printf("pass %s\n", name.c_str());
      continue;
    }
    if (exclusions.count(name)) {
      ++excluded_failures;
      std::printf("excluded %s:%s\n  %s\n", name.c_str(), exclusions.at(name).c_str(), why.c_str());
    } else {
      failures.push_back(name + ": " + why);
    }
  }
  for (const auto& f : failures) std::printf("FAILED %s\n", f.c_str());
  for (const auto& n : excluded_passing) std::printf("note: %s passes but is excluded; remove its exclusion\n", n.c_str());
  std::printf("conformance: %d ran, %d passed (%d excluded failures, %zu failures, %d skipped: operators not registered)\n",
              ran, passed, excluded_failures, failures.size(), skipped);
  return failures.empty() ? 0 : 1;
}
