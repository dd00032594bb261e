// `detrq inspect MODEL`: inputs, outputs, operator counts, parameters, estimated FLOPs, planned peak
// memory, the CPU target (this machine's) and the multiply-adds in INT8 (per layer with --layers); for an
// engine file, its header (what it was packed for and what its packed states need); `--passes` adds what
// each planning pass changed.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "command.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/onnx/model.h"
#include "detrq/quant/mac_count.h"
#include "detrq/runtime/cpu_target.h"
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

nlohmann::json passes_json(const std::vector<runtime::PassReport>& reports) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : reports) {
    out.push_back({{"pass", r.pass}, {"rewritten", r.rewritten}, {"fused", r.fused}, {"removed", r.removed},
                   {"nodes_before", r.nodes_before}, {"nodes_after", r.nodes_after}, {"notes", r.notes}});
  }
  return out;
}

std::string passes_text(const std::vector<runtime::PassReport>& reports) {
  std::string out = "passes (in order; nodes rewritten into a new node, fused into one, removed):\n";
  for (const auto& r : reports) {
    out += fmt::format("  {:<26} {:>5} rewritten {:>5} fused {:>5} removed   nodes {} -> {}\n", r.pass, r.rewritten,
                       r.fused, r.removed, r.nodes_before, r.nodes_after);
    for (const std::string& note : r.notes) out += "      " + note + "\n";
  }
  return out;
}

nlohmann::json values_json(const std::vector<onnx::ValueInfo>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& v : values) {
    out.push_back({{"name", v.name}, {"dtype", core::dtype_name(v.dtype)}, {"shape", v.has_shape ? nlohmann::json(v.shape) : nlohmann::json()}});
  }
  return out;
}
std::string feature_list(const std::vector<std::string>& features) {
  std::string s;
  for (const auto& f : features) s += (s.empty() ? "" : ", ") + f;
  return s.empty() ? "none" : s;
}

// An engine file: its header (checked, without the CPU test, so any machine can inspect any engine).
int inspect_engine(const std::string& path, bool json) {
  const engine::cpu::EngineHeader h = engine::cpu::read_engine_header(path);
  const auto lacking = engine::cpu::missing_cpu_features(h.cpu_features, runtime::CpuTarget::host().names());
  if (json) {
    const nlohmann::json j = {{"model", path},
                              {"engine_format", h.format_version},
                              {"detrq_version", h.detrq_version},
                              {"source", h.source_name},
                              {"precision", h.precision},
                              {"cpu_target", h.target_features},
                              {"cpu_features_required", h.cpu_features},
                              {"built_on_features", h.built_on_features},
                              {"runs_here", lacking.empty()},
                              {"nodes", h.node_count},
                              {"packed_states", h.packed_state_count},
                              {"packed_bytes", h.packed_bytes},
                              {"weight_bytes", h.weight_bytes},
                              {"arena_bytes", h.arena_bytes}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::string out = fmt::format("engine: {} (detrq CPU engine format {}, detrq {})\n", path, h.format_version,
                                h.detrq_version);
  out += fmt::format("source: {}, precision: {}\n", h.source_name, h.precision);
  out += fmt::format("target: {} (what its kernels' states were packed for)\n", feature_list(h.target_features));
  out += fmt::format("requires: {}{}\n", feature_list(h.cpu_features),
                     lacking.empty() ? " (this CPU has them)" : " (this CPU lacks " + feature_list(lacking) + ")");
  out += fmt::format("built on: {}\n", feature_list(h.built_on_features));
  out += fmt::format("nodes: {}, packed states: {} ({}), weights {}, arena {}\n", h.node_count, h.packed_state_count,
                     mib(h.packed_bytes), mib(h.weight_bytes), mib(h.arena_bytes));
  std::fputs(out.c_str(), stdout);
  return 0;
}
}  // namespace

void add_inspect_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's inputs, outputs, operators, parameters, FLOPs and planned memory, or an engine file's header");
  struct Args {
    std::string model;
    std::vector<std::string> input_shapes;
    bool layers = false;
    bool passes = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "ONNX model or engine file")->required();  // a missing file: detrq: error, exit 6
  cmd->add_option("--input-shape", args->input_shapes, "NAME=1x3x512x512 for inputs with symbolic dimensions");
  cmd->add_flag("--layers", args->layers, "List every Conv/MatMul/Gemm with its multiply-adds and whether it runs in INT8");
  cmd->add_flag("--passes", args->passes, "Also print what each planning pass changed (rewritten, fused, removed)");
  cmd->callback([&action, &global, args] {
    action = [&global, args] {
      if (engine::cpu::is_engine_file(args->model)) return inspect_engine(args->model, global.json);
      runtime::SessionOptions options;
      options.input_shapes = parse_input_shapes(args->input_shapes);
      const onnx::Model model = onnx::load_model(args->model);
      const runtime::ModelSummary s = [&] {
        try {
          return runtime::summarize_model(model, options);
        } catch (const Error& e) {
          // Name the file: plan errors only know nodes and tensors.
          throw Error(e.kind(), e.where().empty() ? args->model : args->model + ": " + e.where(), e.problem(), e.hint());
        }
      }();
      // INT8 by work: a layer counts when both its data inputs come from DequantizeLinear.
      const quant::MacCount macs = s.planned ? quant::count_qdq_macs(model, options) : quant::MacCount{};
      if (global.json) {
        nlohmann::json j = {{"model", args->model},          {"opset", s.opset},
                            {"ir_version", s.ir_version},    {"producer", s.producer},
                            {"inputs", values_json(s.inputs)}, {"outputs", values_json(s.outputs)},
                            {"nodes", s.nodes},              {"operators", s.operator_counts},
                            {"parameters", s.parameters},    {"parameter_bytes", s.parameter_bytes},
                            {"planned", s.planned},         {"cpu_target", options.target.names()}};
        if (s.planned) {
          j["planned_nodes"] = s.planned_nodes;
          j["flops"] = s.flops;
          j["arena_bytes"] = s.arena_bytes;
          j["planned_peak_bytes"] = s.planned_peak_bytes;
          j["macs"] = macs.total;
          j["macs_int8"] = macs.int8;
          j["int8_mac_share"] = macs.int8_share();
          if (args->layers) {
            nlohmann::json list = nlohmann::json::array();
            for (const auto& n : macs.nodes) {
              list.push_back({{"node", n.node}, {"op_type", n.op_type}, {"macs", n.macs}, {"int8", n.int8}});
            }
            j["layers"] = std::move(list);
          }
          if (args->passes) j["passes"] = passes_json(s.passes);
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
      out += fmt::format("target: {} (this CPU's; `--cpu-features` on run, detect, eval, calibrate narrows it)\n",
                         options.target.to_string());
      if (s.planned) {
        out += fmt::format("planned nodes: {} (after constant folding and dead-node removal)\n", s.planned_nodes);
        out += fmt::format("estimated FLOPs: {} ({})\n", si(static_cast<double>(s.flops)), s.flops);
        out += fmt::format("planned peak memory: {} (arena {} + weights {})\n", mib(s.planned_peak_bytes),
                           mib(s.arena_bytes), mib(s.planned_peak_bytes - s.arena_bytes));
        out += fmt::format("multiply-adds (Conv/MatMul/Gemm): {}, {:.1f}% in INT8 (both inputs dequantized)\n",
                           si(static_cast<double>(macs.total)), 100.0 * macs.int8_share());
        if (args->layers) {
          for (const auto& n : macs.nodes) {
            out += fmt::format("  {:<5} {:>9} {:>6.2f}%  {}\n", n.int8 ? "INT8" : "float", si(static_cast<double>(n.macs)),
                               macs.total ? 100.0 * static_cast<double>(n.macs) / static_cast<double>(macs.total) : 0.0,
                               n.node);
          }
        }
        if (args->passes) out += passes_text(s.passes);
      } else {
        out += fmt::format("estimated FLOPs, planned peak memory: unavailable: {}\n", s.plan_error);
      }
      std::fputs(out.c_str(), stdout);
      return 0;
    };
  });
}

}  // namespace detrq::cli
