// A small HTTP/1.1 server on POSIX sockets: keep-alive, Content-Length and chunked request bodies,
// deadlines against slow or stalled clients, a connection limit, and sendfile() for file bodies.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace detrq::hub::detail {

struct HttpServerLimits {
  int header_timeout_s = 10;  // request line and headers, whole
  int io_timeout_s = 30;      // any single wait for bytes to read or room to write
  std::size_t max_header_bytes = 64 * 1024;
  int max_connections = 64;
};

// Thrown by the exchange when the client misbehaves; the server answers `status` and closes.
struct HttpProtocolError {
  int status;
  std::string message;
};

class HttpExchange {
 public:
  HttpExchange(int fd, const HttpServerLimits& limits) : fd_(fd), limits_(limits) {}

  // Reads the next request's head; false when the peer closed cleanly between requests.
  bool read_head();

  const std::string& method() const { return method_; }
  const std::string& target() const { return target_; }  // raw path and query
  std::string path() const;                              // target before '?', still percent-encoded
  std::string query_param(const std::string& name) const;  // decoded
  std::string header(const std::string& lower_name) const;
  bool has_body() const { return chunked_ || content_length_ > 0; }
  uint64_t content_length() const { return content_length_; }  // 0 when chunked

  // Reads the whole body into memory; HttpProtocolError 413 when it exceeds `max_bytes`.
  std::string read_body(uint64_t max_bytes);
  // Streams the body to `sink`; 413 past `max_bytes`. Returns the number of bytes.
  uint64_t read_body_to(uint64_t max_bytes, const std::function<void(const char*, std::size_t)>& sink);
  // Reads and drops whatever body is left, so the connection can carry the next request.
  void discard_body();

  void send(int status, const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
            bool head_only = false);
  // Sends [offset, offset+length) of an open file.
  void send_file(int status, const std::vector<std::pair<std::string, std::string>>& headers, int file_fd,
                 uint64_t offset, uint64_t length, bool head_only);

  bool responded() const { return responded_; }
  // After a protocol error: answer without touching the body again, then close.
  void abandon() {
    keep_alive_ = false;
    body_done_ = true;
  }
  bool keep_alive() const { return keep_alive_; }

 private:
  std::size_t fill(int timeout_ms);  // reads more bytes into buf_; 0 on EOF
  std::size_t read_some(char* out, std::size_t max, int timeout_ms);
  std::string read_line(std::size_t max, int64_t deadline_ms);
  void write_all(const char* p, std::size_t n);
  std::string status_head(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                          uint64_t length);

  int fd_;
  const HttpServerLimits& limits_;
  std::string buf_;  // bytes read but not consumed
  std::size_t pos_ = 0;
  std::string method_, target_, version_;
  std::map<std::string, std::string> headers_;
  uint64_t content_length_ = 0;
  bool chunked_ = false;
  bool body_done_ = true;
  bool keep_alive_ = true;
  bool responded_ = false;
  bool continue_sent_ = false;
};

class HttpServer {
 public:
  using Handler = std::function<void(HttpExchange&)>;
  HttpServer(HttpServerLimits limits, Handler handler) : limits_(limits), handler_(std::move(handler)) {}
  ~HttpServer();

  void listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  HttpServerLimits limits_;
  Handler handler_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable idle_;
  std::set<int> connections_;
};

}  // namespace detrq::hub::detail
