// `detrq publish`: creates a Hub repository if needed and commits local files to it in one commit.
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "detrq/hub/hub_client.h"

namespace detrq::cli {

void add_publish_command(CLI::App& app, CommandAction& action, const GlobalOptions& global) {
  struct Options {
    std::string repo;
    std::vector<std::string> files;
    bool is_private = false;
    std::string message = "Upload with detrq";
    std::string revision = "main";
    std::string parent;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("publish", "Upload files to a Hugging Face Hub repository in one commit");
  cmd->add_option("--hf-repo", opts->repo, "Repository, ORG/NAME (created when missing)")->required();
  cmd->add_option("--file", opts->files, "LOCAL[:PATH_IN_REPO], repeatable")->required();
  cmd->add_flag("--private", opts->is_private, "Create the repository as private");
  cmd->add_option("--message", opts->message, "Commit message")->capture_default_str();
  cmd->add_option("--revision", opts->revision, "Branch to commit to")->capture_default_str();
  cmd->add_option("--parent-commit", opts->parent, "Refuse to commit unless the branch head is this commit");
  cmd->callback([opts, &action, &global] {
    action = [opts, &global] {
      std::vector<hub::UploadItem> items;
      for (const std::string& spec : opts->files) {
        // LOCAL:PATH splits at the last ':' so that local paths may hold colons only without a target.
        const std::size_t colon = spec.rfind(':');
        hub::UploadItem item;
        if (colon == std::string::npos) {
          item.local = spec;
          item.path_in_repo = std::filesystem::path(spec).filename().string();
        } else {
          item.local = spec.substr(0, colon);
          item.path_in_repo = spec.substr(colon + 1);
        }
        items.push_back(item);
      }
      hub::HubClient client;
      if (client.create_repo(opts->repo, opts->is_private)) core::log_info("created {}", opts->repo);
      std::optional<std::string> parent;
      if (!opts->parent.empty()) parent = opts->parent;
      const hub::CommitResult r = client.upload_files(opts->repo, items, opts->message, opts->revision, parent);
      if (global.json) {
        std::cout << nlohmann::json{{"commit", r.commit}, {"url", r.commit_url}}.dump() << "\n";
      } else {
        std::cout << r.commit_url << "\n";
      }
      return 0;
    };
  });
}

}  // namespace detrq::cli
