// The HTTP/1.1 server: parsing with hard limits and deadlines, one thread per connection.
#include "hub/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "detrq/core/error.h"
#include "detrq/core/log.h"

namespace detrq::hub::detail {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  std::size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) --b;
  return s.substr(a, b - a);
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 206: return "Partial Content";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::size_t HttpExchange::read_some(char* out, std::size_t max, int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  for (;;) {
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) throw HttpProtocolError{408, "the client sent nothing for too long"};
    if (r < 0) throw HttpProtocolError{0, "poll failed"};
    break;
  }
  for (;;) {
    const ssize_t n = ::recv(fd_, out, max, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw HttpProtocolError{0, "connection reset"};
    return static_cast<std::size_t>(n);
  }
}

std::size_t HttpExchange::fill(int timeout_ms) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  char tmp[65536];
  const std::size_t n = read_some(tmp, sizeof tmp, timeout_ms);
  buf_.append(tmp, n);
  return n;
}

std::string HttpExchange::read_line(std::size_t max, int64_t deadline_ms) {
  for (;;) {
    const std::size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      std::string line = buf_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    if (buf_.size() - pos_ > max) throw HttpProtocolError{431, "request head too large"};
    const int64_t left = deadline_ms - now_ms();
    if (left <= 0) throw HttpProtocolError{408, "the request head took too long"};
    if (fill(static_cast<int>(std::min<int64_t>(left, limits_.io_timeout_s * 1000LL))) == 0) {
      throw HttpProtocolError{0, "connection closed mid-request"};
    }
  }
}

bool HttpExchange::read_head() {
  method_.clear();
  target_.clear();
  headers_.clear();
  content_length_ = 0;
  chunked_ = false;
  responded_ = false;
  continue_sent_ = false;
  // Between requests a keep-alive connection may idle for io_timeout; then the head has its own deadline.
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
    try {
      if (fill(limits_.io_timeout_s * 1000) == 0) return false;
    } catch (const HttpProtocolError& e) {
      if (e.status == 408) return false;  // an idle keep-alive connection simply ends
      throw;
    }
  }
  const int64_t deadline = now_ms() + limits_.header_timeout_s * 1000LL;
  std::string line = read_line(limits_.max_header_bytes, deadline);
  while (line.empty()) line = read_line(limits_.max_header_bytes, deadline);  // tolerate stray CRLF
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) throw HttpProtocolError{400, "malformed request line"};
  method_ = line.substr(0, sp1);
  target_ = line.substr(sp1 + 1, sp2 - sp1 - 1);
  version_ = line.substr(sp2 + 1);
  if (version_ != "HTTP/1.1" && version_ != "HTTP/1.0") throw HttpProtocolError{400, "unsupported HTTP version"};
  if (target_.empty() || target_[0] != '/') throw HttpProtocolError{400, "malformed request target"};
  std::size_t total = line.size();
  for (;;) {
    std::string h = read_line(limits_.max_header_bytes, deadline);
    if (h.empty()) break;
    total += h.size();
    if (total > limits_.max_header_bytes || headers_.size() > 200) throw HttpProtocolError{431, "too many headers"};
    const std::size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) throw HttpProtocolError{400, "malformed header"};
    std::string name = lower(h.substr(0, colon));
    std::string value = trim(h.substr(colon + 1));
    if (name == "content-length" && headers_.count(name) && headers_[name] != value) {
      throw HttpProtocolError{400, "conflicting Content-Length headers"};
    }
    headers_[name] = value;
  }
  const std::string te = lower(header("transfer-encoding"));
  if (!te.empty()) {
    if (te != "chunked") throw HttpProtocolError{501, "unsupported Transfer-Encoding"};
    if (!header("content-length").empty()) throw HttpProtocolError{400, "both Content-Length and chunked"};
    chunked_ = true;
  } else if (const std::string cl = header("content-length"); !cl.empty()) {
    if (cl.size() > 19 || !std::all_of(cl.begin(), cl.end(), [](unsigned char c) { return std::isdigit(c); })) {
      throw HttpProtocolError{400, "malformed Content-Length"};
    }
    content_length_ = std::stoull(cl);
  }
  body_done_ = !chunked_ && content_length_ == 0;
  const std::string connection = lower(header("connection"));
  keep_alive_ = version_ == "HTTP/1.1" ? connection != "close" : connection == "keep-alive";
  return true;
}

std::string HttpExchange::path() const { return target_.substr(0, target_.find('?')); }

std::string HttpExchange::query_param(const std::string& name) const {
  const std::size_t q = target_.find('?');
  if (q == std::string::npos) return {};
  std::size_t start = q + 1;
  while (start <= target_.size()) {
    std::size_t end = target_.find('&', start);
    if (end == std::string::npos) end = target_.size();
    const std::string pair = target_.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) == name) {
      return eq == std::string::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    }
    start = end + 1;
  }
  return {};
}

std::string HttpExchange::header(const std::string& lower_name) const {
  auto it = headers_.find(lower_name);
  return it == headers_.end() ? std::string() : it->second;
}

uint64_t HttpExchange::read_body_to(uint64_t max_bytes, const std::function<void(const char*, std::size_t)>& sink) {
  if (body_done_) return 0;
  if (lower(header("expect")) == "100-continue" && !continue_sent_) {
    // Clients that ask first (git-lfs, curl by default) would otherwise wait a second before sending.
    continue_sent_ = true;
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    write_all(kContinue, sizeof kContinue - 1);
  }
  const int timeout = limits_.io_timeout_s * 1000;
  uint64_t total = 0;
  auto take = [&](uint64_t want) {
    while (want > 0) {
      if (pos_ == buf_.size() && fill(timeout) == 0) throw HttpProtocolError{0, "connection closed mid-body"};
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(want, buf_.size() - pos_));
      sink(buf_.data() + pos_, n);
      pos_ += n;
      want -= n;
    }
  };
  if (!chunked_) {
    if (content_length_ > max_bytes) {
      keep_alive_ = false;
      throw HttpProtocolError{413, "request body too large (limit " + std::to_string(max_bytes) + " bytes)"};
    }
    take(content_length_);
    total = content_length_;
  } else {
    const int64_t far = INT64_MAX / 2;
    for (;;) {
      const std::string size_line = read_line(1024, now_ms() + far);
      const std::string hex = size_line.substr(0, size_line.find(';'));
      if (hex.empty() || hex.size() > 15) throw HttpProtocolError{400, "malformed chunk size"};
      uint64_t size = 0;
      for (char c : trim(hex)) {
        const int v = hex_value(c);
        if (v < 0) throw HttpProtocolError{400, "malformed chunk size"};
        size = size * 16 + static_cast<uint64_t>(v);
      }
      if (size == 0) {
        while (!read_line(8192, now_ms() + far).empty()) {
        }  // trailers
        break;
      }
      if (total + size > max_bytes) {
        keep_alive_ = false;
        throw HttpProtocolError{413, "request body too large (limit " + std::to_string(max_bytes) + " bytes)"};
      }
      take(size);
      total += size;
      if (!read_line(16, now_ms() + far).empty()) throw HttpProtocolError{400, "malformed chunk"};
    }
  }
  body_done_ = true;
  return total;
}

std::string HttpExchange::read_body(uint64_t max_bytes) {
  std::string out;
  if (!chunked_) out.reserve(static_cast<std::size_t>(std::min<uint64_t>(content_length_, max_bytes)));
  read_body_to(max_bytes, [&](const char* p, std::size_t n) { out.append(p, n); });
  return out;
}

void HttpExchange::discard_body() {
  if (body_done_) return;
  // A large unread body is cheaper to cut off than to drain.
  if (chunked_ || content_length_ > (1u << 20)) {
    keep_alive_ = false;
    return;
  }
  read_body_to(1u << 20, [](const char*, std::size_t) {});
}

void HttpExchange::write_all(const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd_, POLLOUT, 0};
      if (::poll(&pfd, 1, limits_.io_timeout_s * 1000) <= 0) throw HttpProtocolError{0, "client stopped reading"};
      continue;
    }
    if (w < 0) throw HttpProtocolError{0, "connection reset while writing"};
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::string HttpExchange::status_head(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                                      uint64_t length) {
  if (!body_done_) discard_body();
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  head += "Content-Length: " + std::to_string(length) + "\r\n";
  head += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  responded_ = true;
  return head;
}

void HttpExchange::send(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                        const std::string& body, bool head_only) {
  std::string out = status_head(status, headers, body.size());
  if (!head_only) out += body;
  write_all(out.data(), out.size());
}

void HttpExchange::send_file(int status, const std::vector<std::pair<std::string, std::string>>& headers, int file_fd,
                             uint64_t offset, uint64_t length, bool head_only) {
  const std::string head = status_head(status, headers, length);
  write_all(head.data(), head.size());
  if (head_only) return;
  off_t off = static_cast<off_t>(offset);
  uint64_t left = length;
  while (left > 0) {
    const ssize_t n = ::sendfile(fd_, file_fd, &off, static_cast<std::size_t>(std::min<uint64_t>(left, 1u << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd_, POLLOUT, 0};
      if (::poll(&pfd, 1, limits_.io_timeout_s * 1000) <= 0) throw HttpProtocolError{0, "client stopped reading"};
      continue;
    }
    if (n <= 0) throw HttpProtocolError{0, "connection reset while sending a file"};
    left -= static_cast<uint64_t>(n);
  }
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::listen(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res) != 0 || !res) {
    throw Error(ErrorKind::kNetwork, host, "cannot resolve the listen address", "use an IP address such as 127.0.0.1");
  }
  listen_fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listen_fd_ < 0 || ::bind(listen_fd_, res->ai_addr, res->ai_addrlen) != 0 || ::listen(listen_fd_, 256) != 0) {
    const std::string err = std::strerror(errno);
    ::freeaddrinfo(res);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    throw Error(ErrorKind::kNetwork, host + ":" + port_s, "cannot listen: " + err, "is the port already in use?");
  }
  ::freeaddrinfo(res);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) throw_io("pipe", "cannot create a pipe");
  acceptor_ = std::thread([this] { accept_loop(); });
}

void HttpServer::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    const int r = ::poll(p, 2, -1);
    if (stopping_) return;
    if (r < 0) continue;
    if (!(p[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    {
      std::lock_guard lock(mutex_);
      if (static_cast<int>(connections_.size()) >= limits_.max_connections) {
        // Full: answer 503 right away rather than let a flood queue up behind slow clients.
        static const char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      connections_.insert(fd);
    }
    std::thread([this, fd] { serve(fd); }).detach();
  }
}

void HttpServer::serve(int fd) {
  HttpExchange ex(fd, limits_);
  try {
    while (!stopping_ && ex.read_head()) {
      try {
        handler_(ex);
      } catch (const HttpProtocolError&) {
        throw;
      } catch (const std::exception& e) {
        core::log_warn("hub-server: {} {}: {}", ex.method(), ex.path(), e.what());
        if (!ex.responded()) ex.send(500, {{"Content-Type", "application/json"}}, R"({"error":"internal error"})");
      }
      if (!ex.responded()) ex.send(500, {}, "");
      if (!ex.keep_alive()) break;
    }
  } catch (const HttpProtocolError& e) {
    if (e.status > 0 && !ex.responded()) {
      try {
        ex.abandon();
        ex.send(e.status, {{"Content-Type", "application/json"}},
                "{\"error\":\"" + e.message + "\"}");
      } catch (...) {
      }
    }
  } catch (...) {
  }
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  std::lock_guard lock(mutex_);
  connections_.erase(fd);
  idle_.notify_all();
}

void HttpServer::stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  (void)!::write(wake_pipe_[1], "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::unique_lock lock(mutex_);
    for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);  // wakes workers blocked in poll
    idle_.wait_for(lock, std::chrono::seconds(30), [&] { return connections_.empty(); });
  }
  ::close(listen_fd_);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
  listen_fd_ = -1;
}

}  // namespace detrq::hub::detail
