// A small HTTP/1.1 server on POSIX sockets: an epoll loop holds idle connections and collects request heads
// (so slow clients cost a socket, not a thread), a pool of workers runs complete requests; keep-alive,
// Content-Length and chunked bodies, deadlines for heads and bodies, per-address limits, sendfile().
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
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
  int header_timeout_s = 10;  // request line and headers, whole, counted from the first byte (or the accept)
  int io_timeout_s = 30;      // any single wait for bytes to read or room to write; also the keep-alive idle time
  std::size_t max_header_bytes = 64 * 1024;
  int max_connections = 64;               // requests handled at once (worker threads)
  int max_open_connections = 4096;        // sockets held at all, idle or sending a head
  int max_connections_per_address = 64;   // sockets held for one client address
  uint64_t min_body_bytes_per_s = 4096;   // a body slower than this on average, past io_timeout of grace, is cut
};

// Offset just past the blank line that ends the request head starting at `from`, or npos while incomplete.
std::size_t request_head_end(const std::string& buf, std::size_t from);
// Offset just past the first line end at or after `from` that is followed by an empty line, or npos.
std::size_t blank_line_end(const std::string& buf, std::size_t from);

// Thrown by the exchange when the client misbehaves; the server answers `status` and closes.
struct HttpProtocolError {
  int status;
  std::string message;
};

class HttpExchange {
 public:
  HttpExchange(int fd, const HttpServerLimits& limits, std::string buffered = {})
      : fd_(fd), limits_(limits), buf_(std::move(buffered)) {}

  // True when the bytes already read hold the whole next request head (a pipelined request).
  bool next_head_buffered() const { return request_head_end(buf_, pos_) != std::string::npos; }
  // The bytes read but not consumed, for the event loop to keep with the idle connection.
  std::string take_buffered() { return buf_.substr(pos_); }

  // Reads the next request's head; false when the peer closed cleanly between requests.
  bool read_head();

  const std::string& method() const { return method_; }
  const std::string& target() const { return target_; }  // raw path and query
  std::string path() const;                              // target before '?', still percent-encoded
  std::string query_param(const std::string& name) const;  // decoded; the first when repeated
  std::vector<std::string> query_params(const std::string& name) const;  // every value, decoded, in order
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
  int64_t body_deadline_ms(uint64_t received) const;
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
  int64_t body_start_ms_ = 0;
};

using HttpHandler = std::function<void(HttpExchange&)>;

// Serves the requests of one connection whose head is next in `ex`, as a worker does: each through
// `handler` (a handler's exception other than HttpProtocolError answers 500, a protocol error answers its
// status and ends the connection). Returns true when the connection stays open for a request whose head is
// not read yet; false when it is to be closed. Stops early once `stopping` is set.
bool serve_exchange(HttpExchange& ex, const HttpHandler& handler, const std::atomic<bool>& stopping);

class HttpServer {
 public:
  using Handler = HttpHandler;
  HttpServer(HttpServerLimits limits, Handler handler) : limits_(limits), handler_(std::move(handler)) {}
  ~HttpServer();

  void listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }
  void stop();

 private:
  struct Connection {
    int fd = -1;
    std::string address;  // the peer's IP address, for the per-address limit
    std::string buf;      // bytes read, not yet handed to a request
    int64_t deadline_ms = 0;
    bool in_head = false;  // a request head has begun: the header deadline runs
    bool closing = false;  // answered with an error: input is drained until EOF or the deadline, then closed
  };

  void event_loop();
  void accept_ready();
  void admit(int fd, const std::string& address);
  void read_ready(Connection& c);
  void refuse(Connection& c, int status, const char* message);
  void watch(Connection c);
  void expire(int64_t now);
  void take_returned();
  void worker_loop();
  void serve(Connection c);
  void release(int fd, const std::string& address);

  HttpServerLimits limits_;
  Handler handler_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop requested or connections returned by workers
  uint16_t port_ = 0;
  std::thread loop_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  std::map<int, Connection> waiting_;  // owned by the event loop thread

  std::mutex mutex_;  // guards everything below
  std::condition_variable ready_cv_;
  std::deque<Connection> ready_;      // complete heads waiting for a worker
  std::vector<Connection> returned_;  // keep-alive connections given back by workers
  std::set<int> active_;              // fds a worker is serving
  std::map<std::string, int> per_address_;
  int open_ = 0;
};

}  // namespace detrq::hub::detail
