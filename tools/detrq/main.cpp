// detrq command-line entry point: parses the command line, runs one subcommand, and turns errors
// into "detrq: error: ..." on stderr and a documented exit code.
#include <cstdio>
#include <exception>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"detrq: accurate, fast INT8 deployment of DETR-family detectors (RF-DETR first)", "detrq"};
  app.set_version_flag("--version", std::string("detrq ") + DETRQ_VERSION);
  app.require_subcommand(1);
  app.fallthrough();

  detrq::cli::GlobalOptions global;
  bool verbose = false;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "Log debug messages on stderr");
  app.add_flag("-q,--quiet", quiet, "Log only errors on stderr");
  app.add_flag("--json", global.json, "Print results as JSON on stdout");
  const std::string exit_codes =
      "Exit codes: 0 success, 1 the command did not achieve what was asked, 2 bad command line,\n"
      "3 invalid input (corrupt or malformed file), 4 unsupported (operator, CPU feature),\n"
      "5 network or Hub error, 6 file system error, 70 internal error.";
  app.footer(exit_codes);

  detrq::cli::CommandAction action;
  // Subcommands, one line each (see command.h).
  detrq::cli::add_prepare_command(app, action, global);
  detrq::cli::add_fetch_calibration_command(app, action, global);
  detrq::cli::add_tensors_command(app, action, global);
  detrq::cli::add_calibrate_command(app, action, global);
  detrq::cli::add_pull_command(app, action, global);
  detrq::cli::add_publish_command(app, action, global);
  detrq::cli::add_hub_server_command(app, action, global);
  detrq::cli::add_build_engine_command(app, action, global);
  detrq::cli::add_detect_command(app, action, global);
  detrq::cli::add_eval_command(app, action, global);
  detrq::cli::add_inspect_command(app, action, global);
  detrq::cli::add_run_command(app, action, global);

  // The same footer on every subcommand: the options every command takes, the exit codes, and the
  // environment of those that reach the Hub.
  const std::string global_options =
      "Every command also takes, before or after its name: --json (results as JSON on stdout), -v/--verbose,\n"
      "-q/--quiet.\n";
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    const std::string name = sub->get_name();
    const bool hub = name == "pull" || name == "publish" || name == "prepare" || name == "build-engine";
    sub->footer(global_options + exit_codes + (hub ? "\nEnvironment: HF_ENDPOINT, HF_TOKEN (else $HF_HOME/token or HF_TOKEN_PATH), HF_HOME, "
                                    "HF_HUB_CACHE, HF_HUB_OFFLINE, as huggingface_hub reads them."
                                  : std::string()));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Prints help, the version or the usage error; every usage error exits with 2.
    return app.exit(e) == 0 ? 0 : static_cast<int>(detrq::ErrorKind::kUsage);
  }
  if (quiet) detrq::core::set_log_level(detrq::core::LogLevel::kError);
  if (verbose) detrq::core::set_log_level(detrq::core::LogLevel::kDebug);

  try {
    return action ? action() : 0;
  } catch (const detrq::Error& e) {
    std::fprintf(stderr, "detrq: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "detrq: error: out of memory\n");
    return static_cast<int>(detrq::ErrorKind::kIo);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "detrq: error: internal: %s (please report this)\n", e.what());
    return static_cast<int>(detrq::ErrorKind::kInternal);
  }
}
