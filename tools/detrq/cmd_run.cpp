// `detrq run MODEL --input NAME=FILE ... --output-dir DIR [--threads N] [--repeat N] [--profile]`:
// runs a model (ONNX or engine file) on tensor files and writes every graph output as DIR/<name>.npy.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/onnx/tensor_file.h"
#include "detrq/runtime/session.h"
#include "shape_option.h"

namespace detrq::cli {
namespace {
// Output names become file names: keep them readable but never let them leave the folder.
std::string file_stem(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}
}  // namespace

void add_run_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("run", "Run a model (ONNX or engine file) on tensor files (.npy, .pb, raw float32 .bin)");
  struct Args {
    std::string model;
    std::vector<std::string> inputs;
    std::vector<std::string> input_shapes;
    std::string output_dir;
    int threads = 0;
    std::string cpu_features;
    int repeat = 0;
    bool profile = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "ONNX model or engine file")->required();  // a missing file: detrq: error, exit 6
  // Not required: a graph without inputs (constants only, or every input baked in as an initializer) runs as is.
  cmd->add_option("--input", args->inputs,
                  "NAME=FILE (.npy, .pb TensorProto, or raw float32 .bin in the model's shape), one per model input");
  cmd->add_option("--output-dir", args->output_dir, "Folder for the outputs, one <name>.npy each")->required();
  cmd->add_option("--threads", args->threads, "Worker threads (0, the default: one per core)")->check(count_validator());
  cmd->add_option("--cpu-features", args->cpu_features, "CPU features the kernels may use, narrowing this CPU's (e.g. avx2,fma; default: all it has; a feature it lacks is refused)");
  cmd->add_option("--repeat", args->repeat, "Time N runs after one warm-up and print the median latency")
      ->check(count_validator());
  cmd->add_flag("--profile", args->profile, "Print the time spent per operator type and the 15 slowest nodes");
  cmd->add_option("--input-shape", args->input_shapes, "NAME=1x3x512x512 for inputs with symbolic dimensions");
  cmd->callback([&action, &global, args] {
    action = [&global, args] {
      runtime::SessionOptions options;
      options.threads = args->threads;
      options.target = runtime::narrowed_host_target(args->cpu_features);
      options.input_shapes = parse_input_shapes(args->input_shapes);
      // An engine file runs its stored plan (kernels restore their packed states); anything else loads as ONNX.
      runtime::Session session =
          engine::cpu::is_engine_file(args->model)
              ? engine::cpu::engine_session(engine::cpu::read_engine_file(args->model, options.target.names()),
                                            args->model, options)
              : runtime::Session::load(args->model, options);

      std::map<std::string, core::Tensor> inputs;
      for (const auto& spec : args->inputs) {
        const auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0) {
          throw Error(ErrorKind::kUsage, "--input " + spec, "expected NAME=FILE", "e.g. --input input=image.npy");
        }
        const std::string name = spec.substr(0, eq);
        const auto& declared = session.inputs();
        auto it = std::find_if(declared.begin(), declared.end(), [&](const auto& v) { return v.name == name; });
        if (it == declared.end()) {
          std::string names;
          for (const auto& v : declared) names += (names.empty() ? "" : ", ") + v.name;
          throw Error(ErrorKind::kUsage, "--input " + spec, "'" + name + "' is not an input of the model",
                      "model inputs: " + names);
        }
        inputs[name] = onnx::read_tensor_file(spec.substr(eq + 1), it->shape);
      }

      auto results = session.run(inputs);  // also the warm-up for --repeat
      std::vector<double> times_ms;
      if (args->profile) session.enable_profiling(true);
      for (int i = 0; i < args->repeat; ++i) {
        const auto start = std::chrono::steady_clock::now();
        results = session.run(inputs);
        times_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
      if (args->profile && args->repeat == 0) results = session.run(inputs);

      nlohmann::json j = {{"outputs", nlohmann::json::object()}};
      for (const auto& [name, tensor] : results) {
        const std::filesystem::path file = std::filesystem::path(args->output_dir) / (file_stem(name) + ".npy");
        onnx::write_npy(file, tensor);
        j["outputs"][name] = {{"file", file.string()}, {"dtype", core::dtype_name(tensor.dtype())}, {"shape", tensor.shape()}};
        if (!global.json) {
          std::printf("%s %s%s -> %s\n", name.c_str(), core::dtype_name(tensor.dtype()),
                      core::shape_to_string(tensor.shape()).c_str(), file.c_str());
        }
      }
      if (!times_ms.empty()) {
        std::vector<double> sorted = times_ms;
        std::sort(sorted.begin(), sorted.end());
        const std::size_t n = sorted.size();
        const double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
        j["latency_ms"] = {{"median", median}, {"min", sorted.front()}, {"max", sorted.back()}, {"runs", n}};
        if (!global.json) std::printf("latency median=%.3f ms (min %.3f, max %.3f, %zu runs)\n", median, sorted.front(), sorted.back(), n);
      }
      if (args->profile) {
        const auto profile = session.profile();
        const int runs = std::max(args->repeat, 1);
        double total = 0.0;
        for (const auto& p : profile) total += p.total_ms;
        nlohmann::json pj = nlohmann::json::array();
        if (!global.json) std::printf("%-24s %8s %12s %8s\n", "operator", "calls/run", "ms/run", "share");
        for (const auto& p : profile) {
          const double per_run = p.total_ms / runs;
          const double share = total > 0 ? 100.0 * p.total_ms / total : 0.0;
          pj.push_back({{"op_type", p.op_type}, {"calls", p.calls}, {"ms_per_run", per_run}});
          if (!global.json) {
            std::printf("%-24s %8lld %12.3f %7.1f%%\n", p.op_type.c_str(), static_cast<long long>(p.calls / runs),
                        per_run, share);
          }
        }
        if (!global.json) std::printf("%-24s %8s %12.3f\n", "total", "", total / runs);
        j["profile"] = pj;
        // The slowest nodes, where a model's time goes within an operator type.
        const auto nodes = session.node_profile();
        nlohmann::json nj = nlohmann::json::array();
        if (!global.json && !nodes.empty()) std::printf("\nslowest nodes (ms/run, type, output shape, name):\n");
        for (std::size_t i = 0; i < nodes.size() && i < 15; ++i) {
          const auto& p = nodes[i];
          const double per_run = p.total_ms / runs;
          nj.push_back({{"name", p.name}, {"op_type", p.op_type}, {"shape", p.output_shape}, {"ms_per_run", per_run}});
          if (!global.json) {
            std::printf("  %9.3f ms  %s %s %s\n", per_run, p.op_type.c_str(), core::shape_to_string(p.output_shape).c_str(),
                        p.name.c_str());
          }
        }
        j["slowest_nodes"] = nj;
      }
      if (global.json) std::printf("%s\n", j.dump(2).c_str());
      return 0;
    };
  });
}

}  // namespace detrq::cli
