// libFuzzer target for the hub-server's request handling, in-process: the input is the bytes a client sends
// on one connection (request heads, Content-Length and chunked bodies, pipelined requests). They go through
// one end of a socket pair into detail::serve_exchange on the other end, which reads heads and bodies as a
// worker does and hands each request to HubServer::handle: detrq's router, JSON bodies (repo create,
// preupload), ndjson commits, LFS batch/upload/verify and the Xet token and CAS routes, over a store in a
// temporary folder holding one model repository with a regular and an LFS file. Any answer is fine; a crash,
// sanitizer report, leak or hang is a bug.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "detrq/core/log.h"
#include "detrq/hub/hub_server.h"
#include "hub/http_server.h"

namespace {

namespace fs = std::filesystem;

detrq::hub::HubServer* server = nullptr;
detrq::hub::detail::HttpServerLimits limits;
// A Xet write token for org/model issued by this process's server: the recorded seeds carry kPlaceholder
// where the recording's server had issued one, so that their xorb and shard uploads pass authorization.
std::string xet_token;
constexpr char kPlaceholder[] = "@XET-TOKEN@";

// Sends `request` on a fresh connection and serves it; returns what the server answered.
std::string exchange(const std::string& request) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  std::string answer;
  std::thread writer([&] {
    std::size_t done = 0;
    while (done < request.size()) {
      const ssize_t n = ::send(fds[1], request.data() + done, request.size() - done, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed its end early (an error answer)
      done += static_cast<std::size_t>(n);
    }
    ::shutdown(fds[1], SHUT_WR);
  });
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fds[1], buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<std::size_t>(n));
    }
  });
  {
    const std::atomic<bool> stopping{false};
    detrq::hub::detail::HttpExchange ex(fds[0], limits);
    while (detrq::hub::detail::serve_exchange(ex, [](detrq::hub::detail::HttpExchange& e) { server->handle(e); },
                                              stopping)) {
    }
  }
  ::shutdown(fds[0], SHUT_RDWR);
  writer.join();
  reader.join();
  ::close(fds[0]);
  ::close(fds[1]);
  return answer;
}

std::string post(const std::string& target, const std::string& type, const std::string& body) {
  return "POST " + target + " HTTP/1.1\r\nHost: hub.fuzz\r\nAuthorization: Bearer fuzz-write-token\r\nContent-Type: " +
         type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  detrq::core::set_log_level(detrq::core::LogLevel::kError);
  const fs::path root = fs::temp_directory_path() / ("detrq-hub-fuzz-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  std::ofstream(root / "tokens.txt") << "fuzz-write-token write\nfuzz-read-token read\n";
  detrq::hub::HubServerOptions options;
  options.root = root / "store";
  options.tokens_file = root / "tokens.txt";
  options.io_timeout_s = 2;
  options.header_timeout_s = 2;
  options.lfs_threshold = 64;  // small files go through LFS too, so the LFS routes have objects to serve
  server = new detrq::hub::HubServer(options);
  server->open();
  limits.io_timeout_s = 2;
  limits.header_timeout_s = 2;
  // The repository the seeds address: org/model with README.md (regular) and weights.bin (LFS, uploaded).
  const std::string created =
      exchange(post("/api/repos/create", "application/json", R"({"name":"model","organization":"org","type":"model"})"));
  const std::string commit =
      exchange(post("/api/models/org/model/commit/main", "application/x-ndjson",
                    "{\"key\":\"header\",\"value\":{\"summary\":\"seed\",\"description\":\"\"}}\n"
                    "{\"key\":\"file\",\"value\":{\"content\":\"IyBzZWVkCg==\",\"path\":\"README.md\",\"encoding\":\"base64\"}}\n"));
  const std::string token = exchange(
      "GET /api/models/org/model/xet-write-token/main HTTP/1.1\r\nHost: hub.fuzz\r\n"
      "Authorization: Bearer fuzz-write-token\r\nConnection: close\r\n\r\n");
  const std::size_t at = token.find("\"accessToken\":\"");
  if (created.rfind("HTTP/1.1 200", 0) != 0 || commit.rfind("HTTP/1.1 200", 0) != 0 || at == std::string::npos) {
    std::fprintf(stderr, "hub_server_fuzzer: setting up the repository failed:\n%s\n%s\n%s\n", created.c_str(),
                 commit.c_str(), token.c_str());
    std::abort();
  }
  const std::size_t from = at + 15;
  xet_token = token.substr(from, token.find('"', from) - from);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string request(reinterpret_cast<const char*>(data), size);
  for (std::size_t at = request.find(kPlaceholder); at != std::string::npos; at = request.find(kPlaceholder, at)) {
    request.replace(at, sizeof kPlaceholder - 1, xet_token);
    at += xet_token.size();
  }
  (void)exchange(request);
  return 0;
}
