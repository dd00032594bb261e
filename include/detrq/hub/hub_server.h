// A Hugging Face-compatible Hub on a folder: repositories, commits and LFS objects served over a small
// HTTP/1.1 server of our own (an epoll loop for idle sockets and request heads, a pool of worker threads),
// for air-gapped sites and for the tests. huggingface_hub works against it unchanged, over Xet (with hf_xet) or classic LFS.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace detrq::hub {

namespace detail {
class HttpExchange;
}

struct HubServerOptions {
  std::filesystem::path root;           // repositories live under root/models/ORG/NAME (made if missing)
  std::string host = "127.0.0.1";       // listen address: loopback unless told otherwise
  uint16_t port = 8080;                 // 0 picks a free port
  std::filesystem::path tokens_file;    // lines "<token> read|write"; empty: no token can write
  std::string storage_host;             // host[:port] that LFS downloads redirect to; empty: the request's Host
  uint64_t max_body_bytes = 64ull << 20;      // JSON / ndjson request bodies
  uint64_t max_upload_bytes = 64ull << 30;    // one LFS object
  uint64_t multipart_threshold = 1ull << 60;  // LFS objects at least this big are uploaded in parts
  uint64_t multipart_chunk = 64ull << 20;     // part size for multipart uploads
  uint64_t lfs_threshold = 10ull << 20;       // files this big (or binary) go through LFS
  int io_timeout_s = 30;                // a client silent this long is dropped
  int header_timeout_s = 10;            // the request line and headers must arrive within this
  int max_connections = 64;             // requests handled at once (worker threads)
  int max_connections_per_address = 64; // sockets one client address may hold; more get 503 at once
};

class HubServer {
 public:
  explicit HubServer(HubServerOptions options);
  ~HubServer();  // stops
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  // Binds and starts serving on background threads; throws kIo/kNetwork when it cannot bind.
  void start();
  // What start() does before it binds: reads the tokens file, opens the store under root. With handle(),
  // the requests of one connection are served in-process, without a socket of the server's own (the
  // fuzz target drives it so; see detail::serve_exchange).
  void open();
  void handle(detail::HttpExchange& exchange);
  // Stops accepting, waits for requests in flight.
  void stop();
  // Blocks until stop() is called from another thread or a signal handler sets request_stop().
  void wait();
  void request_stop() noexcept;

  uint16_t port() const noexcept;  // the bound port (after start)
  std::string endpoint() const;    // http://host:port

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detrq::hub
