// `detrq inspect MODEL`: inputs, outputs, operator counts, parameters, estimated FLOPs and planned
// peak memory.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "command.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/model_summary.h"
#include "shape_option.h"

namespace detrq::cli {
namespace {
std::string mib(std::size_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

std::string si(double v) {
  const char* units[] = {"", " K", " M", " G", " T"};
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  return fmt::format("{:.2f}{}", v, units[u]);
}

std::string type_string(const onnx::ValueInfo& v) {
  return std::string(core::dtype_name(v.dtype)) + " " + (v.has_shape ? core::shape_to_string(v.shape) : "[?]");
}

nlohmann::json values_json(const std::vector<onnx::ValueInfo>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& v : values) {
    out.push_back({{"name", v.name}, {"dtype", core::dtype_name(v.dtype)}, {"shape", v.has_shape ? nlohmann::json(v.shape) : nlohmann::json()}});
  }
  return out;
}
}  // namespace

void add_inspect_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's inputs, outputs, operators, parameters, FLOPs and planned memory");
  struct Args {
    std::string model;
    std::vector<std::string> input_shapes;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "ONNX model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--input-shape", args->input_shapes, "NAME=1x3x512x512 for inputs with symbolic dimensions");
  cmd->callback([&action, &global, args] {
    action = [&global, args] {
      runtime::SessionOptions options;
      options.input_shapes = parse_input_shapes(args->input_shapes);
      const onnx::Model model = onnx::load_model(args->model);
      const runtime::ModelSummary s = runtime::summarize_model(model, options);
      if (global.json) {
        nlohmann::json j = {{"model", args->model},          {"opset", s.opset},
                            {"ir_version", s.ir_version},    {"producer", s.producer},
                            {"inputs", values_json(s.inputs)}, {"outputs", values_json(s.outputs)},
                            {"nodes", s.nodes},              {"operators", s.operator_counts},
                            {"parameters", s.parameters},    {"parameter_bytes", s.parameter_bytes},
                            {"planned", s.planned}};
        if (s.planned) {
          j["planned_nodes"] = s.planned_nodes;
          j["flops"] = s.flops;
          j["arena_bytes"] = s.arena_bytes;
          j["planned_peak_bytes"] = s.planned_peak_bytes;
        } else {
          j["plan_error"] = s.plan_error;
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      std::string out = fmt::format("model: {}\nopset: {} (IR {}), producer: {}\ninputs:\n", args->model, s.opset,
                                    s.ir_version, s.producer.empty() ? "-" : s.producer);
      for (const auto& v : s.inputs) out += fmt::format("  {}  {}\n", v.name, type_string(v));
      out += "outputs:\n";
      for (const auto& v : s.outputs) out += fmt::format("  {}  {}\n", v.name, type_string(v));
      out += fmt::format("operators: {} nodes, {} types\n", s.nodes, s.operator_counts.size());
      std::vector<std::pair<std::string, int64_t>> ops(s.operator_counts.begin(), s.operator_counts.end());
      std::stable_sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
      for (const auto& [op, n] : ops) out += fmt::format("  {:<24}{:>6}\n", op, n);
      out += fmt::format("parameters: {} ({})\n", s.parameters, mib(s.parameter_bytes));
      if (s.planned) {
        out += fmt::format("planned nodes: {} (after constant folding and dead-node removal)\n", s.planned_nodes);
        out += fmt::format("estimated FLOPs: {} ({})\n", si(static_cast<double>(s.flops)), s.flops);
        out += fmt::format("planned peak memory: {} (arena {} + weights {})\n", mib(s.planned_peak_bytes),
                           mib(s.arena_bytes), mib(s.planned_peak_bytes - s.arena_bytes));
      } else {
        out += fmt::format("estimated FLOPs, planned peak memory: unavailable: {}\n", s.plan_error);
      }
      std::fputs(out.c_str(), stdout);
      return 0;
    };
  });
}

}  // namespace detrq::cli
