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
      // What it listens on, as given: 0.0.0.0 is every interface, not loopback.
      const std::string& host = opts->host;
      const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
      const std::string listening = "http://" + shown + ":" + std::to_string(server.port());
      const bool loopback = host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
      if (!loopback) {
        std::cerr << "detrq: warning: hub-server listens on " << listening
                  << (host == "0.0.0.0" || host == "::" ? " (every network interface)" : "")
                  << ": other machines can reach it"
                  << (opts->tokens_file.empty() ? " and read its public repositories"
                                                : " and read its public repositories; --tokens decides who may write")
                  << " (give --host 127.0.0.1 to serve this machine only)" << std::endl;
      }
      std::cout << "serving " << opts->root.string() << " on " << listening << std::endl;
      int sig = 0;
      sigwait(&set, &sig);
      core::log_info("hub-server: stopping");
      server.stop();
      return 0;
    };
  });
}

}  // namespace detrq::cli
