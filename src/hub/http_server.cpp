// One HTTP/1.1 exchange on a connection: request parsing with hard limits and deadlines, bodies, answers.
// The connections themselves (event loop, limits, workers) live in http_connections.cpp.
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

std::size_t blank_line_end(const std::string& buf, std::size_t from) {
  for (std::size_t nl = buf.find('\n', from); nl != std::string::npos; nl = buf.find('\n', nl + 1)) {
    if (nl + 1 < buf.size() && buf[nl + 1] == '\n') return nl + 2;
    if (nl + 2 < buf.size() && buf[nl + 1] == '\r' && buf[nl + 2] == '\n') return nl + 3;
  }
  return std::string::npos;
}

std::size_t request_head_end(const std::string& buf, std::size_t from) {
  while (from < buf.size() && (buf[from] == '\r' || buf[from] == '\n')) ++from;  // stray CRLF between requests
  return blank_line_end(buf, from);
}

int64_t HttpExchange::body_deadline_ms(uint64_t received) const {
  // A body may take io_timeout plus the time its bytes need at the minimum rate: fast uploads of any size
  // pass, a trickle (or a never-ending chunked body sent slowly) is cut.
  if (limits_.min_body_bytes_per_s == 0) return INT64_MAX / 2;
  return body_start_ms_ + limits_.io_timeout_s * 1000LL +
         static_cast<int64_t>(received / limits_.min_body_bytes_per_s * 1000);
}

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
    if (left <= 0) throw HttpProtocolError{408, "the request took too long"};
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
  body_start_ms_ = 0;
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

std::vector<std::string> HttpExchange::query_params(const std::string& name) const {
  std::vector<std::string> values;
  const std::size_t q = target_.find('?');
  if (q == std::string::npos) return values;
  std::size_t start = q + 1;
  while (start <= target_.size()) {
    std::size_t end = target_.find('&', start);
    if (end == std::string::npos) end = target_.size();
    const std::string pair = target_.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) == name) {
      values.push_back(eq == std::string::npos ? std::string() : percent_decode(pair.substr(eq + 1)));
    }
    start = end + 1;
  }
  return values;
}

std::string HttpExchange::query_param(const std::string& name) const {
  const std::vector<std::string> values = query_params(name);
  return values.empty() ? std::string() : values.front();
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
  if (body_start_ms_ == 0) body_start_ms_ = now_ms();
  uint64_t total = 0;     // body bytes (chunk payloads) accepted
  uint64_t received = 0;  // body bytes delivered to the sink so far, for the rate deadline
  auto take = [&](uint64_t want) {
    while (want > 0) {
      if (pos_ == buf_.size()) {
        const int64_t left = body_deadline_ms(received) - now_ms();
        if (left <= 0) throw HttpProtocolError{408, "the request body arrives too slowly"};
        if (fill(static_cast<int>(std::min<int64_t>(left, limits_.io_timeout_s * 1000LL))) == 0) {
          throw HttpProtocolError{0, "connection closed mid-body"};
        }
      }
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(want, buf_.size() - pos_));
      sink(buf_.data() + pos_, n);
      pos_ += n;
      want -= n;
      received += n;
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
    for (;;) {
      const std::string size_line = read_line(1024, body_deadline_ms(received));
      const std::string hex = size_line.substr(0, size_line.find(';'));
      if (hex.empty() || hex.size() > 15) throw HttpProtocolError{400, "malformed chunk size"};
      uint64_t size = 0;
      for (char c : trim(hex)) {
        const int v = hex_value(c);
        if (v < 0) throw HttpProtocolError{400, "malformed chunk size"};
        size = size * 16 + static_cast<uint64_t>(v);
      }
      if (size == 0) {
        while (!read_line(8192, body_deadline_ms(received)).empty()) {
        }  // trailers
        break;
      }
      if (total + size > max_bytes) {
        keep_alive_ = false;
        throw HttpProtocolError{413, "request body too large (limit " + std::to_string(max_bytes) + " bytes)"};
      }
      take(size);
      total += size;
      if (!read_line(16, body_deadline_ms(received)).empty()) throw HttpProtocolError{400, "malformed chunk"};
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

}  // namespace detrq::hub::detail
