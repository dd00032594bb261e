// XetService: CAS tokens are random, kept in memory with their repository, role and expiry; a token never
// opens another repository, and a read token never writes. Uploads stream into a temporary file and are
// verified (xet_store) before anything is kept. Xorb bytes are read through HMAC-signed, expiring URLs, the
// way the Hub hands out presigned storage URLs, so hf_xet's plain fetches need no credentials.
#include "hub/xet_service.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "detrq/core/error.h"
#include "detrq/core/log.h"
#include "hub/digest.h"
#include "hub/temp_file.h"

namespace detrq::hub::detail {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr int64_t kTokenLifetimeS = 3600;
constexpr int64_t kUrlLifetimeS = 3600;
constexpr uint64_t kMaxXorbBytes = 80ull << 20;  // xet-core caps a xorb at 64 MiB of chunks, plus headers and footer
constexpr uint64_t kMaxShardBytes = 64ull << 20;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_json(HttpExchange& ex, int status, const json& body, Headers headers = {}) {
  headers.emplace_back("Content-Type", "application/json");
  ex.send(status, headers, body.dump(), ex.method() == "HEAD");
}

void send_error(HttpExchange& ex, int status, const std::string& message) {
  if (!ex.responded()) send_json(ex, status, json{{"error", message}}, {{"X-Error-Message", message}});
}

std::string random_token() {
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof raw) != 1) throw Error(ErrorKind::kInternal, "hub-server", "no randomness for a token");
  return "xet_" + base64_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

// An inclusive "bytes=a-b" range (b optional); nullopt when absent or unreadable.
std::optional<std::pair<uint64_t, uint64_t>> parse_byte_range(const std::string& header) {
  if (header.rfind("bytes=", 0) != 0 || header.find(',') != std::string::npos) return std::nullopt;
  const std::size_t dash = header.find('-', 6);
  if (dash == std::string::npos || dash == 6) return std::nullopt;
  try {
    const uint64_t a = std::stoull(header.substr(6, dash - 6));
    const std::string b = header.substr(dash + 1);
    return std::make_pair(a, b.empty() ? UINT64_MAX : std::stoull(b));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string XetService::cas_url(const std::string& base_url, const RepoKey& key) {
  return base_url + "/xet-cas/" + key.type + "s/" + key.org + "/" + key.name;
}

void XetService::issue_token(HttpExchange& ex, const RepoKey& key, bool write, const std::string& base_url) {
  const std::string token = random_token();
  const int64_t expires = unix_now() + kTokenLifetimeS;
  {
    std::lock_guard lock(mutex_);
    for (auto it = grants_.begin(); it != grants_.end();) it = it->second.expires < unix_now() ? grants_.erase(it) : ++it;
    grants_[token] = Grant{key, write, expires};
  }
  const std::string cas = cas_url(base_url, key);
  send_json(ex, 200, json{{"accessToken", token}, {"exp", expires}, {"casUrl", cas}},
            {{"X-Xet-Cas-Url", cas}, {"X-Xet-Access-Token", token}, {"X-Xet-Token-Expiration", std::to_string(expires)}});
}

bool XetService::authorize(HttpExchange& ex, const RepoKey& key, Need need) {
  const std::string auth = ex.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) {
    send_error(ex, 401, "this CAS route needs a Xet token (Authorization: Bearer ...) from xet-read-token or xet-write-token");
    return false;
  }
  std::optional<Grant> grant;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = grants_.find(auth.substr(7)); it != grants_.end()) grant = it->second;
  }
  if (!grant || grant->expires < unix_now()) {
    send_error(ex, 401, "unknown or expired Xet token; ask xet-read-token / xet-write-token for a new one");
    return false;
  }
  if (grant->key.type != key.type || grant->key.id() != key.id()) {
    send_error(ex, 403, "this Xet token was issued for " + grant->key.id() + ", not " + key.id());
    return false;
  }
  if (need == Need::kWrite && !grant->write) {
    send_error(ex, 403, "this Xet token is read-only; uploads need one from xet-write-token");
    return false;
  }
  return true;
}

void XetService::handle_cas(HttpExchange& ex, const RepoKey& key, const std::vector<std::string>& rest,
                            const std::string& base_url) {
  const std::string& m = ex.method();
  if (rest.size() == 2 && rest[0] == "xorb-data" && (m == "GET" || m == "HEAD")) return xorb_data(ex, key, rest[1]);
  if (rest.empty() || rest[0] != "v1") {
    // v2 routes are optional: hf_xet falls back to v1 on 404.
    return send_error(ex, 404, "no such CAS endpoint: " + m + " " + ex.path());
  }
  if (!store_.exists(key)) return send_error(ex, 404, "Repository Not Found: " + key.id());
  if (rest.size() == 4 && rest[1] == "xorbs" && m == "POST") {
    if (authorize(ex, key, Need::kWrite)) upload_xorb(ex, key, rest[3]);
    return;
  }
  if (rest.size() == 4 && rest[1] == "xorbs" && m == "HEAD") {
    if (!authorize(ex, key, Need::kRead)) return;
    const auto h = xet_from_hex(rest[3]);
    return ex.send(h && store_for(key).xorb_chunks(*h) ? 200 : 404, {}, "", true);
  }
  if (rest.size() == 2 && rest[1] == "shards" && m == "POST") {
    if (authorize(ex, key, Need::kWrite)) upload_shard(ex, key);
    return;
  }
  if (rest.size() == 3 && rest[1] == "reconstructions" && m == "GET") {
    if (authorize(ex, key, Need::kRead)) reconstruction(ex, key, rest[2], base_url);
    return;
  }
  if (rest.size() == 4 && rest[1] == "chunks" && m == "GET") {
    // Global deduplication is not offered: every repository keeps its own xorbs.
    if (authorize(ex, key, Need::kRead)) send_error(ex, 404, "no shard for this chunk");
    return;
  }
  send_error(ex, 404, "no such CAS endpoint: " + m + " " + ex.path());
}

void XetService::upload_xorb(HttpExchange& ex, const RepoKey& key, const std::string& hash) {
  const auto name = xet_from_hex(hash);
  if (!name) return send_error(ex, 400, "a xorb name is 64 hex digits");
  XetOutcome o;
  {  // the temporary file is gone before the answer goes out
    TempFile tmp(store_.temp_path(key));
    ex.read_body_to(kMaxXorbBytes, [&](const char* p, std::size_t n) { tmp.write(p, n); });
    tmp.finish();
    o = store_for(key).put_xorb(*name, tmp.path);
  }
  if (o.status != 200) {
    core::log_info("hub-server: {} refused xorb {}: {}", key.id(), hash, o.message);
    return send_error(ex, o.status, o.message);
  }
  send_json(ex, 200, json{{"was_inserted", o.inserted}});
}

void XetService::upload_shard(HttpExchange& ex, const RepoKey& key) {
  const std::string body = ex.read_body(kMaxShardBytes);
  const XetOutcome o = store_for(key).put_shard(body);
  if (o.status != 200) {
    core::log_info("hub-server: {} refused a shard: {}", key.id(), o.message);
    return send_error(ex, o.status, o.message);
  }
  send_json(ex, 200, json{{"result", 1}});
}

std::string XetService::xorb_data_url(const std::string& base_url, const RepoKey& key, const std::string& hash) const {
  const std::string path = "/xet-cas/" + key.type + "s/" + key.org + "/" + key.name + "/xorb-data/" + hash;
  const std::string expires = std::to_string(unix_now() + kUrlLifetimeS);
  return base_url + path + "?expires=" + expires + "&sig=" + hmac_sha256_hex(secret_, path + "\n" + expires);
}

void XetService::reconstruction(HttpExchange& ex, const RepoKey& key, const std::string& hash,
                                const std::string& base_url) {
  const auto h = xet_from_hex(hash);
  const XetStore xs = store_for(key);
  const auto file = h ? xs.file(*h) : std::nullopt;
  if (!file) return send_error(ex, 404, "no file with Xet hash " + hash + " in " + key.id());
  uint64_t first = 0, last = file->size == 0 ? 0 : file->size - 1;
  if (const std::string r = ex.header("range"); !r.empty()) {
    const auto range = parse_byte_range(r);
    if (!range || range->first >= file->size) return send_error(ex, 416, "range outside the file");
    first = range->first;
    last = std::min(last, range->second);
  }
  json terms = json::array(), fetch = json::object();
  uint64_t offset = 0, offset_into_first = 0;
  for (const XetTerm& t : file->terms) {
    const auto chunks = xs.xorb_chunks(t.xorb);
    if (!chunks) return send_error(ex, 500, "a stored xorb is missing");
    int64_t lo = -1, hi = -1;  // chunk indices of the term that overlap [first, last]
    for (uint32_t i = t.chunk_start; i < t.chunk_end; offset += (*chunks)[i].unpacked_len, ++i) {
      const uint64_t end = offset + (*chunks)[i].unpacked_len;
      if (end <= first || offset > last) continue;
      if (terms.empty() && lo < 0) offset_into_first = first - offset;
      if (lo < 0) lo = i;
      hi = i;
    }
    if (lo < 0) continue;
    uint64_t bytes = 0;
    for (int64_t i = lo; i <= hi; ++i) bytes += (*chunks)[i].unpacked_len;
    const json range = {{"start", lo}, {"end", hi + 1}};
    const std::string x = xet_hex(t.xorb);
    terms.push_back({{"hash", x}, {"unpacked_length", bytes}, {"range", range}});
    const XorbChunk& a = (*chunks)[lo];
    const XorbChunk& b = (*chunks)[hi];
    fetch[x].push_back({{"range", range}, {"url", xorb_data_url(base_url, key, x)},
                        {"url_range", {{"start", a.offset}, {"end", b.offset + b.stored_len - 1}}}});
  }
  send_json(ex, 200, json{{"offset_into_first_range", offset_into_first}, {"terms", terms}, {"fetch_info", fetch}});
}

void XetService::xorb_data(HttpExchange& ex, const RepoKey& key, const std::string& hash) {
  const std::string expires = ex.query_param("expires"), sig = ex.query_param("sig");
  bool valid = false;
  try {
    valid = !expires.empty() && expires.size() < 19 && std::stoll(expires) >= unix_now() &&
            constant_time_equal(sig, hmac_sha256_hex(secret_, ex.path() + "\n" + expires));
  } catch (const std::exception&) {
  }
  const auto h = xet_from_hex(hash);
  if (!valid || !h) return send_error(ex, 403, "invalid or expired signature");
  const std::filesystem::path p = store_for(key).xorb_path(*h);
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return send_error(ex, 404, "no such xorb");
  struct stat st {};
  ::fstat(fd, &st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t first = 0, last = size - 1;
  int status = 200;
  Headers headers = {{"Content-Type", "application/octet-stream"}, {"Accept-Ranges", "bytes"}};
  if (const auto r = parse_byte_range(ex.header("range")); r && r->first < size) {
    first = r->first;
    last = std::min(last, r->second);
    status = 206;
    headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                              std::to_string(size));
  }
  try {
    ex.send_file(status, headers, fd, first, last - first + 1, ex.method() == "HEAD");
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

}  // namespace detrq::hub::detail
