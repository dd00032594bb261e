// `detrq pull`: downloads a Hub repository (or some of its files) into huggingface_hub's cache.
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.h"
#include "detrq/hub/hub_client.h"

namespace detrq::cli {

void add_pull_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  struct Options {
    std::string repo;
    std::string revision = "main";
    std::vector<std::string> files;
    std::string local_dir;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("pull", "Download a Hugging Face Hub repository into the shared Hub cache");
  cmd->add_option("--hf-repo", opts->repo, "Repository, ORG/NAME")->required();
  cmd->add_option("--revision", opts->revision, "Branch, tag or commit id")->capture_default_str();
  cmd->add_option("--files", opts->files, "Only these files (comma-separated)")->delimiter(',');
  cmd->add_option("--local-dir", opts->local_dir, "Also place the files in this folder");
  cmd->footer("Environment: HF_ENDPOINT, HF_TOKEN (or $HF_HOME/token), HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE.");
  cmd->callback([opts, &action, &global] {
    action = [opts, &global] {
      hub::HubClient client;
      std::optional<std::filesystem::path> local;
      if (!opts->local_dir.empty()) local = opts->local_dir;
      const std::filesystem::path root = client.snapshot_download(opts->repo, opts->revision, opts->files, local);
      std::vector<std::string> paths;
      if (local) {
        for (const auto& f : opts->files) paths.push_back((root / f).string());
      }
      if (global.json) {
        std::cout << nlohmann::json{{"path", root.string()}, {"files", paths}}.dump() << "\n";
      } else if (local && !paths.empty()) {
        for (const auto& p : paths) std::cout << p << "\n";
      } else {
        std::cout << root.string() << "\n";
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
