// `detrq hub-server`: serves a folder as a Hugging Face-compatible Hub until SIGINT or SIGTERM.
#include <signal.h>

#include <iostream>

#include "command.h"
#include "detrq/core/log.h"
#include "detrq/hub/hub_server.h"

namespace detrq::cli {

void add_hub_server_command(CLI::App& app, CommandAction& action, const GlobalOptions&) {
  auto opts = std::make_shared<hub::HubServerOptions>();
  auto multipart_mb = std::make_shared<uint64_t>(0);
  CLI::App* cmd = app.add_subcommand("hub-server", "Serve a folder as a Hugging Face-compatible Hub");
  cmd->add_option("--root", opts->root, "Folder holding the repositories")->required();
  cmd->add_option("--host", opts->host, "Listen address (loopback unless told otherwise)")->capture_default_str();
  cmd->add_option("--port", opts->port, "Port (0 picks a free one)")->capture_default_str();
  cmd->add_option("--tokens", opts->tokens_file, "File of '<token> read|write' lines; writes need a write token");
  cmd->add_option("--storage-host", opts->storage_host, "host:port that LFS downloads redirect to");
  cmd->add_option("--max-body-bytes", opts->max_body_bytes, "Limit for JSON and commit bodies")->capture_default_str();
  cmd->add_option("--max-upload-bytes", opts->max_upload_bytes, "Limit for one LFS object")->capture_default_str();
  cmd->add_option("--multipart-mb", *multipart_mb, "Ask for multipart uploads of LFS objects at least this big (MB)");
  cmd->add_option("--io-timeout", opts->io_timeout_s, "Seconds a silent client is waited for")->capture_default_str();
  cmd->add_option("--header-timeout", opts->header_timeout_s, "Seconds a request head may take")->capture_default_str();
  cmd->add_option("--max-connections", opts->max_connections, "Requests served at once (worker threads)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--max-connections-per-address", opts->max_connections_per_address,
                  "Connections one client address may hold open")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->callback([opts, multipart_mb, &action] {
    action = [opts, multipart_mb] {
      if (*multipart_mb > 0) {
        opts->multipart_threshold = *multipart_mb << 20;
        opts->multipart_chunk = std::max<uint64_t>(1, *multipart_mb << 20);
      }
      // Signals are taken by sigwait below, so every server thread must have them blocked.
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      hub::HubServer server(*opts);
      server.start();
      std::cout << "serving " << opts->root.string() << " on " << server.endpoint() << std::endl;
      int sig = 0;
      sigwait(&set, &sig);
      core::log_info("hub-server: stopping");
      server.stop();
      return 0;
    };
  });
}

}  // namespace detrq::cli
