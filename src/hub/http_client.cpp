// libcurl-backed HttpClient: one reused easy handle (keep-alive), no automatic redirects, bodies
// streamed from files and into sinks.
#include "detrq/hub/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "detrq/core/error.h"

namespace detrq::hub {
namespace {

constexpr std::size_t kMaxErrorBody = 1 << 20;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// The URL without its query: signed URLs carry secrets there, so errors never print it.
std::string url_for_messages(const std::string& url) { return url.substr(0, url.find('?')); }

struct Transfer {
  HttpResponse* response;
  const BodySink* sink;
  CURL* curl;
  bool sink_failed = false;
  int fd = -1;  // upload source
  uint64_t upload_left = 0;
  const ProgressCallback* progress;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear();  // a new (possibly interim) response begins
    return size * n;
  }
  const std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response->headers[lower(std::string(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->sink && *t->sink && status >= 200 && status < 300) {
    if (!(*t->sink)(data, bytes)) {
      t->sink_failed = true;
      return 0;
    }
    return bytes;
  }
  std::string& body = t->response->body;
  if (body.size() < kMaxErrorBody) body.append(data, std::min(bytes, kMaxErrorBody - body.size()));
  return bytes;
}

size_t on_read(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, t->upload_left));
  if (want == 0) return 0;
  for (;;) {
    const ssize_t got = ::read(t->fd, buffer, want);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return CURL_READFUNC_ABORT;
    t->upload_left -= static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (t->progress && *t->progress) {
    if (ultotal > 0) {
      (*t->progress)(static_cast<uint64_t>(ulnow), static_cast<uint64_t>(ultotal));
    } else {
      (*t->progress)(static_cast<uint64_t>(dlnow), static_cast<uint64_t>(dltotal));
    }
  }
  return 0;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpClient::Impl {
  CURL* curl = nullptr;
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->curl = curl_easy_init();
  if (!impl_->curl) throw Error(ErrorKind::kInternal, "libcurl", "curl_easy_init failed", "a bug");
}

HttpClient::~HttpClient() {
  if (impl_->curl) curl_easy_cleanup(impl_->curl);
}

HttpResponse HttpClient::perform(const HttpRequest& request, const BodySink& sink, const ProgressCallback& progress) {
  CURL* curl = impl_->curl;
  curl_easy_reset(curl);
  HttpResponse response;
  Transfer t{&response, &sink, curl, false, -1, 0, &progress};

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(request.connect_timeout_s));
  if (request.timeout_s > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(request.timeout_s));
  if (request.low_speed_timeout_s > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.low_speed_timeout_s));
  }
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "detrq/" DETRQ_VERSION);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, nullptr);  // identity: sizes must be the real sizes
  if (progress) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  }

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) headers = curl_slist_append(headers, (name + ": " + value).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip

  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (!request.body_file.empty()) {
    t.fd = ::open(request.body_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (t.fd < 0) {
      curl_slist_free_all(headers);
      throw_io(request.body_file.string(), std::string("cannot open: ") + std::strerror(errno));
    }
    if (::lseek(t.fd, static_cast<off_t>(request.body_offset), SEEK_SET) < 0) {
      ::close(t.fd);
      curl_slist_free_all(headers);
      throw_io(request.body_file.string(), "cannot seek");
    }
    t.upload_left = request.body_size;
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body_size));
  } else if (request.method != "GET" || !request.body.empty()) {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method != "GET") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (t.fd >= 0) ::close(t.fd);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  if (rc != CURLE_OK) {
    if (t.sink_failed) throw_io(url_for_messages(request.url), "could not store the downloaded bytes");
    throw Error(ErrorKind::kNetwork, url_for_messages(request.url), curl_easy_strerror(rc),
                "check the network and HF_ENDPOINT; the transfer is retried and resumed where safe");
  }
  return response;
}

std::string url_origin(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  const std::string scheme = lower(url.substr(0, scheme_end));
  std::size_t host_start = scheme_end + 3;
  std::size_t host_end = url.find_first_of("/?#", host_start);
  std::string authority = lower(url.substr(host_start, host_end == std::string::npos ? std::string::npos : host_end - host_start));
  if (const std::size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  const std::size_t bracket = authority.rfind(']');
  const std::size_t colon = authority.rfind(':');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) {
    authority += scheme == "https" ? ":443" : ":80";
  }
  return scheme + "://" + authority;
}

std::string resolve_url(const std::string& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  const std::size_t scheme_end = base.find("://");
  if (scheme_end == std::string::npos) return location;
  if (location.rfind("//", 0) == 0) return base.substr(0, scheme_end + 1) + location;
  const std::size_t path_start = base.find('/', scheme_end + 3);
  const std::string origin = path_start == std::string::npos ? base : base.substr(0, path_start);
  if (!location.empty() && location[0] == '/') return origin + location;
  std::string dir = path_start == std::string::npos ? "/" : base.substr(path_start, base.find('?', path_start) - path_start);
  dir = dir.substr(0, dir.rfind('/') + 1);
  return origin + dir + location;
}

std::string url_encode_component(const std::string& s) {
  static const char* const kDigits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
  }
  return out;
}

std::string url_encode_path(const std::string& path) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    out += url_encode_component(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

}  // namespace detrq::hub
