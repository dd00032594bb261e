// The HTTP server's connections: one epoll loop accepts, enforces the open-socket and per-address limits,
// holds idle keep-alive sockets and collects request heads against the header deadline; only a complete head
// goes to one of a fixed pool of worker threads. A client that trickles its head costs a socket and a small
// buffer, never a worker, so slow clients cannot starve the others.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "hub/http_server.h"

namespace detrq::hub::detail {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string peer_address(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
  } else if (addr.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, text, sizeof text);
  }
  return text;
}

// Best effort: a refusal is small and the socket is fresh, so it fits the send buffer.
void send_now(int fd, const std::string& text) { (void)!::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT); }

std::string error_answer(int status, const char* reason, const char* message) {
  const std::string body = std::string("{\"error\":\"") + message + "\"}";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// The open-socket limit must stay under the descriptor limit: an accept() that fails with EMFILE leaves the
// listening socket readable, and the loop would spin. Raises the soft limit to the hard one first.
int fit_to_descriptor_limit(int wanted) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return wanted;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  constexpr rlim_t kReserve = 128;  // files, pipes and the stores' own descriptors
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > static_cast<rlim_t>(wanted) + kReserve) return wanted;
  return std::max<int>(16, static_cast<int>(lim.rlim_cur) - static_cast<int>(kReserve));
}

// Whether the head in `buf` is complete, looking only at line ends the bytes from `before` on can close:
// a head trickled a byte at a time is then scanned once, not once per byte. Drops stray leading CRLFs.
bool head_ends_since(std::string& buf, std::size_t before) {
  std::size_t lead = 0;
  while (lead < buf.size() && (buf[lead] == '\r' || buf[lead] == '\n')) ++lead;
  if (lead > 0) {
    buf.erase(0, lead);
    before = 0;
  }
  return blank_line_end(buf, before >= 2 ? before - 2 : 0) != std::string::npos;
}

constexpr int64_t kLingerMs = 2000;  // after an error answer, input is drained this long so the client reads it

}  // namespace

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
  listen_fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listen_fd_ < 0 || ::bind(listen_fd_, res->ai_addr, res->ai_addrlen) != 0 || ::listen(listen_fd_, 1024) != 0) {
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
  limits_.max_open_connections = fit_to_descriptor_limit(limits_.max_open_connections);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw_io("epoll", "cannot create the event loop");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.fd = wake_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  for (int i = 0; i < std::max(1, limits_.max_connections); ++i) workers_.emplace_back([this] { worker_loop(); });
  loop_ = std::thread([this] { event_loop(); });
}

void HttpServer::event_loop() {
  epoll_event events[256];
  int64_t next_expiry_check = 0;
  while (!stopping_) {
    const int n = ::epoll_wait(epoll_fd_, events, 256, 200);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        accept_ready();
      } else if (fd == wake_fd_) {
        uint64_t v;
        (void)!::read(wake_fd_, &v, sizeof v);
        take_returned();
      } else if (auto it = waiting_.find(fd); it != waiting_.end()) {
        read_ready(it->second);
      }
    }
    if (const int64_t now = now_ms(); now >= next_expiry_check) {
      expire(now);
      next_expiry_check = now + 100;
    }
  }
  for (auto& [fd, c] : waiting_) release(fd, c.address);
  waiting_.clear();
}

void HttpServer::accept_ready() {
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN: all taken; other errors (EMFILE, ECONNABORTED): try again on the next event
    admit(fd, peer_address(addr));
  }
}

void HttpServer::admit(int fd, const std::string& address) {
  {
    std::lock_guard lock(mutex_);
    int& mine = per_address_[address];
    if (open_ >= limits_.max_open_connections || mine >= limits_.max_connections_per_address) {
      // Answer at once rather than let one address (or a flood) hold sockets the others need.
      if (mine == 0) per_address_.erase(address);
      send_now(fd, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      ::close(fd);
      return;
    }
    ++mine;
    ++open_;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Connection c;
  c.fd = fd;
  c.address = address;
  c.in_head = true;  // a fresh connection owes its first head within the header deadline
  c.deadline_ms = now_ms() + limits_.header_timeout_s * 1000LL;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  // The request often arrived with the connection: read it now rather than on the next loop turn.
  read_ready(waiting_.emplace(fd, std::move(c)).first->second);
}

void HttpServer::read_ready(Connection& c) {
  char tmp[16384];
  for (;;) {
    const ssize_t n = ::recv(c.fd, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {  // EOF or reset
      const int fd = c.fd;
      release(fd, c.address);
      waiting_.erase(fd);
      return;
    }
    if (c.closing) continue;  // drained, so that the error answer is not destroyed by a reset
    const std::size_t before = c.buf.size();
    c.buf.append(tmp, static_cast<std::size_t>(n));
    if (!c.in_head) {
      c.in_head = true;
      c.deadline_ms = now_ms() + limits_.header_timeout_s * 1000LL;
    }
    if (head_ends_since(c.buf, before)) {
      const int fd = c.fd;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      {
        std::lock_guard lock(mutex_);
        ready_.push_back(std::move(c));
      }
      waiting_.erase(fd);
      ready_cv_.notify_one();
      return;
    }
    if (c.buf.size() > limits_.max_header_bytes) return refuse(c, 431, "request head too large");
  }
}

void HttpServer::refuse(Connection& c, int status, const char* message) {
  send_now(c.fd, error_answer(status, status == 431 ? "Request Header Fields Too Large" : "Request Timeout", message));
  ::shutdown(c.fd, SHUT_WR);
  c.closing = true;
  c.buf.clear();
  c.buf.shrink_to_fit();
  c.deadline_ms = now_ms() + kLingerMs;
}

void HttpServer::expire(int64_t now) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    Connection& c = it->second;
    if (now < c.deadline_ms) {
      ++it;
    } else if (c.in_head && !c.closing) {
      refuse(c, 408, "the request head took too long");
      ++it;
    } else {  // idle keep-alive, or done lingering
      release(c.fd, c.address);
      it = waiting_.erase(it);
    }
  }
}

void HttpServer::watch(Connection c) {
  if (stopping_) return release(c.fd, c.address);
  c.in_head = !c.buf.empty();
  c.closing = false;
  c.deadline_ms = now_ms() + (c.in_head ? limits_.header_timeout_s : limits_.io_timeout_s) * 1000LL;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = c.fd;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
  const int fd = c.fd;
  waiting_.emplace(fd, std::move(c));
}

void HttpServer::take_returned() {
  std::vector<Connection> back;
  {
    std::lock_guard lock(mutex_);
    back.swap(returned_);
  }
  for (Connection& c : back) watch(std::move(c));
}

void HttpServer::worker_loop() {
  for (;;) {
    Connection c;
    {
      std::unique_lock lock(mutex_);
      ready_cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      c = std::move(ready_.front());
      ready_.pop_front();
      active_.insert(c.fd);
    }
    serve(std::move(c));
  }
}

bool serve_exchange(HttpExchange& ex, const HttpHandler& handler, const std::atomic<bool>& stopping) {
  try {
    while (!stopping && ex.read_head()) {
      try {
        handler(ex);
      } catch (const HttpProtocolError&) {
        throw;
      } catch (const std::exception& e) {
        core::log_warn("hub-server: {} {}: {}", ex.method(), ex.path(), e.what());
        if (!ex.responded()) ex.send(500, {{"Content-Type", "application/json"}}, R"({"error":"internal error"})");
      }
      if (!ex.responded()) ex.send(500, {}, "");
      if (!ex.keep_alive()) return false;
      // The next head is waited for by the event loop, not by this worker.
      if (!ex.next_head_buffered()) return true;
    }
  } catch (const HttpProtocolError& e) {
    if (e.status > 0 && !ex.responded()) {
      try {
        ex.abandon();
        ex.send(e.status, {{"Content-Type", "application/json"}}, "{\"error\":\"" + e.message + "\"}");
      } catch (...) {
      }
    }
  } catch (...) {
  }
  return false;
}

void HttpServer::serve(Connection c) {
  HttpExchange ex(c.fd, limits_, std::move(c.buf));
  const bool keep = serve_exchange(ex, handler_, stopping_);
  {
    std::lock_guard lock(mutex_);
    active_.erase(c.fd);
    if (keep && !stopping_) {
      c.buf = ex.take_buffered();
      returned_.push_back(std::move(c));
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
      return;
    }
  }
  ::shutdown(c.fd, SHUT_RDWR);
  release(c.fd, c.address);
}

void HttpServer::release(int fd, const std::string& address) {
  ::close(fd);
  std::lock_guard lock(mutex_);
  --open_;
  if (auto it = per_address_.find(address); it != per_address_.end() && --it->second <= 0) per_address_.erase(it);
}

void HttpServer::stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (loop_.joinable()) loop_.join();
  {
    std::lock_guard lock(mutex_);
    for (int fd : active_) ::shutdown(fd, SHUT_RDWR);  // wakes workers blocked in poll
  }
  ready_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  for (Connection& c : ready_) release(c.fd, c.address);
  ready_.clear();
  for (Connection& c : returned_) release(c.fd, c.address);
  returned_.clear();
  ::close(listen_fd_);
  ::close(epoll_fd_);
  ::close(wake_fd_);
  listen_fd_ = epoll_fd_ = wake_fd_ = -1;
}

}  // namespace detrq::hub::detail
