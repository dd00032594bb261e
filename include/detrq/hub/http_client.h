// A small HTTP client over libcurl for the Hub: one request at a time, redirects followed by the caller
// (so credentials never leave the endpoint's host), bodies from memory or a file range, responses to
// memory or appended to a file descriptor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace detrq::hub {

// Header names are compared case-insensitively; stored lower-case.
using HttpHeaders = std::map<std::string, std::string>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given
  std::string body;                                          // used when body_file is empty
  std::filesystem::path body_file;                           // upload bytes [body_offset, body_offset+body_size)
  uint64_t body_offset = 0;
  uint64_t body_size = 0;
  int timeout_s = 0;          // whole request (0: none, for big downloads)
  int connect_timeout_s = 15;
  int low_speed_timeout_s = 30;  // abort when under 1 byte/s for this long (stalled peer)
};

struct HttpResponse {
  long status = 0;
  HttpHeaders headers;  // lower-case names
  std::string body;     // empty when the body went to a sink
  std::string header(const std::string& lower_name) const;
};

// Receives body bytes; returns false to abort the transfer.
using BodySink = std::function<bool(const char* data, std::size_t size)>;
// Progress in bytes (now, total or 0 when unknown).
using ProgressCallback = std::function<void(uint64_t now, uint64_t total)>;

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request without following redirects. Throws kNetwork on transport failures (the
  // message names the URL without its query string). `sink`, when given, receives the body of 2xx
  // responses; other bodies land in HttpResponse::body (capped at 1 MiB).
  HttpResponse perform(const HttpRequest& request, const BodySink& sink = {},
                       const ProgressCallback& progress = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// scheme://host[:port] of a URL, lower-cased, with the default port made explicit; "" if unparsable.
std::string url_origin(const std::string& url);
// Resolves a Location header against the URL it came from.
std::string resolve_url(const std::string& base, const std::string& location);
// Percent-encodes a path, keeping '/'.
std::string url_encode_path(const std::string& path);
std::string url_encode_component(const std::string& s);

}  // namespace detrq::hub
