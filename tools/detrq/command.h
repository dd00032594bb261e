// How subcommands plug into the detrq tool: each cmd_<name>.cpp adds one CLI11 subcommand whose
// callback stores the action to run after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/quant/calibrate.h"

namespace detrq::cli {

// The chosen subcommand's work; returns the process exit code.
using CommandAction = std::function<int()>;

// Options every subcommand shares.
struct GlobalOptions {
  bool json = false;  // machine-readable results on stdout
};

// Thread counts and image/tensor counts: a whole number, 0 or more (what 0 means, the option's help says).
// One check with one message for every command: "--threads: '-1' is not a whole number 0 or more".
inline CLI::Validator count_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::size_t used = 0;
        long long v = -1;
        try {
          v = std::stoll(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != text.size() || v < 0 || v > 1000000000) {
          return "'" + text + "' is not a whole number 0 or more";
        }
        return {};
      },
      "0 or more", "count");
}

// `--onnx` takes an ONNX model and `--engine` a detrq engine file (detect, eval): a file of the other kind is
// refused naming what it is and the option that takes it (exit 3); a missing file is a file system error.
// Commands that take a model positionally (inspect, run) take both kinds.
inline void check_model_option(const std::string& option, const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw_io(path, std::filesystem::exists(path, ec) ? "is not a file" : "does not exist",
             option == "--engine" ? "--engine takes an engine file from detrq build-engine"
                                  : option + " takes an ONNX model file");
  }
  const bool engine = engine::cpu::is_engine_file(path);
  if (option == "--engine" && !engine) {
    throw_invalid(path, "is not a detrq engine file (it lacks the engine header)",
                  "an ONNX model goes to --onnx; detrq build-engine makes an engine from it");
  }
  if (option != "--engine" && engine) {
    throw_invalid(path, "is a detrq engine file, not an ONNX model", "give it as --engine");
  }
}

// An old spelling of an option, kept so that existing scripts still work: accepted, bound to the same
// variable as the current name, and hidden from --help (CLI11 hides the group "").
template <typename T>
CLI::Option* add_hidden_alias(CLI::App* cmd, const std::string& old_name, T& variable) {
  return cmd->add_option(old_name, variable, "")->group("");
}

// The calibration options `calibrate` and `prepare` share, defined once in cmd_calibrate.cpp (a new
// calibration flag added there reaches `prepare` too). add_calibration_flags puts them on a command in the
// group "Calibration"; after parsing, finish() turns their text into `options` and args() gives back the
// ones given, as command-line words (prepare's equivalent command and step parameters).
struct CalibrationFlags {
  std::shared_ptr<quant::CalibrateOptions> options = std::make_shared<quant::CalibrateOptions>();
  std::shared_ptr<std::string> method = std::make_shared<std::string>("percentile");
  std::shared_ptr<std::string> budget = std::make_shared<std::string>();
  CLI::Option* budget_option = nullptr;  // --accuracy-budget: given (an empty value too is refused) or not
  std::shared_ptr<std::string> ap_budget = std::make_shared<std::string>("0.1");
  std::shared_ptr<bool> no_detr_defaults = std::make_shared<bool>(false);
  std::vector<CLI::Option*> added;
  void finish() const;
  std::vector<std::string> args() const;
};
CalibrationFlags add_calibration_flags(CLI::App* cmd);

// One line per subcommand, defined in cmd_<name>.cpp.
void add_prepare_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_fetch_calibration_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_tensors_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_calibrate_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_pull_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_publish_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_hub_server_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_build_engine_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_detect_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_eval_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_inspect_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);
void add_run_command(CLI::App& app, CommandAction& action, const GlobalOptions& global);

}  // namespace detrq::cli
