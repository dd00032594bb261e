// How subcommands plug into the detrq tool: each cmd_<name>.cpp adds one CLI11 subcommand whose
// callback stores the action to run after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace detrq::cli {

// The chosen subcommand's work; returns the process exit code.
using CommandAction = std::function<int()>;

// Options every subcommand shares.
struct GlobalOptions {
  bool json = false;  // machine-readable results on stdout
};

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
