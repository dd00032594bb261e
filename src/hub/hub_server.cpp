// HubServer: the Hub's HTTP endpoints (repo create, info and listing with the card's data, resolve,
// preupload, LFS batch and transfers, ndjson commit, and the Xet token and CAS routes through XetService)
// over RepoStore, with bearer tokens for writes and private reads, and HMAC-signed URLs for the transfers
// clients make without credentials.
#include "detrq/hub/hub_server.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <limits>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"
#include "detrq/hub/hub_cache.h"
#include "hub/card_data.h"
#include "hub/digest.h"
#include "hub/http_server.h"
#include "hub/hub_tokens.h"
#include "hub/repo_store.h"
#include "hub/temp_file.h"
#include "hub/xet_service.h"

namespace detrq::hub {
namespace {

using detail::HttpExchange;
using detail::HttpProtocolError;
using detail::RepoKey;
using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr int64_t kSignedUrlLifetimeS = 3600;

enum class Access { kNone, kInvalid, kRead, kWrite };

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits a raw path on '/' and percent-decodes each segment; nullopt on a malformed escape.
std::optional<std::vector<std::string>> split_path(const std::string& raw) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= raw.size()) {
    std::size_t end = raw.find('/', start);
    if (end == std::string::npos) end = raw.size();
    std::string seg;
    for (std::size_t i = start; i < end; ++i) {
      if (raw[i] == '%') {
        if (i + 2 >= end + 0 || hex_digit(raw[i + 1]) < 0 || hex_digit(raw[i + 2]) < 0) return std::nullopt;
        seg += static_cast<char>(hex_digit(raw[i + 1]) * 16 + hex_digit(raw[i + 2]));
        i += 2;
      } else {
        seg += raw[i];
      }
    }
    out.push_back(seg);
    start = end + 1;
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

std::string join(const std::vector<std::string>& v, std::size_t from) {
  std::string s;
  for (std::size_t i = from; i < v.size(); ++i) s += (i > from ? "/" : "") + v[i];
  return s;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string lfs_pointer(const std::string& sha256, uint64_t size) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256 + "\nsize " + std::to_string(size) + "\n";
}

std::string url_prefix(const RepoKey& key) { return key.type == "dataset" ? "datasets/" : ""; }

struct ByteRange {
  uint64_t first = 0, length = 0;
  bool partial = false;
  bool unsatisfiable = false;
};

ByteRange parse_range(const std::string& header, uint64_t size) {
  ByteRange r{0, size, false, false};
  if (header.rfind("bytes=", 0) != 0 || header.find(',') != std::string::npos) return r;  // ignore others
  const std::string spec = header.substr(6);
  const std::size_t dash = spec.find('-');
  if (dash == std::string::npos) return r;
  try {
    const std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
    if (a.empty()) {  // suffix range: the last N bytes
      const uint64_t n = std::stoull(b);
      if (n == 0) return {0, 0, false, true};
      r.first = n >= size ? 0 : size - n;
    } else {
      r.first = std::stoull(a);
    }
    uint64_t last = size == 0 ? 0 : size - 1;
    if (!a.empty() && !b.empty()) last = std::min(last, static_cast<uint64_t>(std::stoull(b)));
    if (r.first >= size || (!a.empty() && !b.empty() && std::stoull(b) < r.first)) return {0, 0, false, true};
    r.length = last - r.first + 1;
    r.partial = true;
  } catch (const std::exception&) {
    return {0, size, false, false};
  }
  return r;
}

}  // namespace

std::vector<std::pair<std::string, bool>> detail::parse_tokens(const std::string& text, const std::string& source) {
  std::vector<std::pair<std::string, bool>> tokens;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string token, role, extra;
    if (!(fields >> token)) continue;
    if (!(fields >> role) || (role != "read" && role != "write") || (fields >> extra)) {
      throw_invalid(source + ":" + std::to_string(n), "expected '<token> read' or '<token> write'");
    }
    tokens.emplace_back(token, role == "write");
  }
  return tokens;
}

struct HubServer::Impl {
  HubServerOptions options;
  std::unique_ptr<detail::RepoStore> store;
  std::unique_ptr<detail::HttpServer> http;
  std::unique_ptr<detail::XetService> xet;
  std::vector<std::pair<std::string, bool>> tokens;  // token, can write
  std::string secret;                                // signs storage URLs; new on every start
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stop_requested = false;

  // ---- helpers -------------------------------------------------------------------------------------

  void load_tokens() {
    tokens.clear();
    if (options.tokens_file.empty()) return;
    tokens = detail::parse_tokens(core::read_file(options.tokens_file), options.tokens_file.string());
  }

  Access access_of(const HttpExchange& ex) const {
    const std::string auth = ex.header("authorization");
    if (auth.empty()) return Access::kNone;
    if (auth.rfind("Bearer ", 0) != 0) return Access::kInvalid;
    const std::string presented = auth.substr(7);
    // Every token is compared, each in constant time, so timing says nothing about which came close.
    Access found = Access::kInvalid;
    for (const auto& [token, write] : tokens) {
      if (detail::constant_time_equal(presented, token)) found = write ? Access::kWrite : Access::kRead;
    }
    return found;
  }

  std::string base_url(const HttpExchange& ex) const {
    std::string host = ex.header("host");
    const bool ok = !host.empty() && host.size() < 256 &&
                    std::all_of(host.begin(), host.end(), [](unsigned char c) {
                      return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
                    });
    if (!ok) host = options.host + ":" + std::to_string(http ? http->port() : options.port);
    return "http://" + host;
  }

  std::string storage_base(const HttpExchange& ex) const {
    return options.storage_host.empty() ? base_url(ex) : "http://" + options.storage_host;
  }

  std::string signature(const std::string& path, const std::string& size, const std::string& commit,
                        const std::string& expires) const {
    return detail::hmac_sha256_hex(secret, path + "\n" + size + "\n" + commit + "\n" + expires);
  }

  std::string signed_url(const std::string& base, const std::string& path, uint64_t size,
                         const std::string& commit = {}) const {
    const std::string expires = std::to_string(unix_now() + kSignedUrlLifetimeS);
    const std::string sz = std::to_string(size);
    std::string url = base + path + "?size=" + sz + "&expires=" + expires;
    if (!commit.empty()) url += "&commit=" + commit;
    return url + "&sig=" + signature(path, sz, commit, expires);
  }

  bool check_signature(const HttpExchange& ex) const {
    const std::string expires = ex.query_param("expires");
    const std::string sig = ex.query_param("sig");
    if (expires.empty() || sig.empty() || expires.size() > 18) return false;
    try {
      if (std::stoll(expires) < unix_now()) return false;
    } catch (const std::exception&) {
      return false;
    }
    return detail::constant_time_equal(
        sig, signature(ex.path(), ex.query_param("size"), ex.query_param("commit"), expires));
  }

  static void send_json(HttpExchange& ex, int status, const json& body, Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    ex.send(status, headers, body.dump(), ex.method() == "HEAD");
  }

  static void send_error(HttpExchange& ex, int status, const std::string& message, const std::string& code = {},
                         Headers headers = {}) {
    if (!code.empty()) headers.emplace_back("X-Error-Code", code);
    headers.emplace_back("X-Error-Message", message);
    send_json(ex, status, json{{"error", message}}, std::move(headers));
  }

  // Private and missing repositories answer alike, so their names do not leak.
  bool require_read(HttpExchange& ex, const RepoKey& key, Access access) {
    if (access == Access::kInvalid) {
      send_error(ex, 401, "Invalid credentials in Authorization header");
      return false;
    }
    if (store->exists(key) && (!store->is_private(key) || access == Access::kRead || access == Access::kWrite)) {
      return true;
    }
    send_error(ex, access == Access::kNone ? 401 : 404,
               "Repository Not Found for url: " + ex.path() + ". Please make sure you specified the correct `repo_id` "
               "and `repo_type`. If you are trying to access a private or gated repo, make sure you are authenticated.",
               "RepoNotFound");
    return false;
  }

  bool require_write(HttpExchange& ex, const RepoKey* key, Access access) {
    if (access == Access::kNone || access == Access::kInvalid) {
      send_error(ex, 401, access == Access::kNone ? "This operation needs a write token (Authorization: Bearer ...)"
                                                  : "Invalid credentials in Authorization header");
      return false;
    }
    if (access != Access::kWrite) {
      send_error(ex, 403, "This token is read-only; writing needs a token with the 'write' role");
      return false;
    }
    if (key && !store->exists(*key)) {
      send_error(ex, 404, "Repository Not Found: " + key->id(), "RepoNotFound");
      return false;
    }
    return true;
  }

  json parse_json_body(HttpExchange& ex) {
    const std::string body = ex.read_body(std::min<uint64_t>(options.max_body_bytes, 64ull << 20));
    try {
      return json::parse(body);
    } catch (const std::exception&) {
      throw HttpProtocolError{400, "the body is not valid JSON"};
    }
  }

  // ---- endpoints ----------------------------------------------------------------------------------

  void create_repo(HttpExchange& ex, Access access) {
    if (!require_write(ex, nullptr, access)) return;
    const json body = parse_json_body(ex);
    const std::string name = body.value("name", "");
    const std::string org = body.contains("organization") && body["organization"].is_string()
                                ? body["organization"].get<std::string>()
                                : "";
    const std::string type = body.contains("type") && body["type"].is_string() ? body["type"].get<std::string>() : "model";
    if (org.empty()) return send_error(ex, 400, "repository ids on this server are ORG/NAME: give an organization");
    const auto key = detail::RepoStore::make_key(type, org, name);
    if (!key) return send_error(ex, 400, "invalid repository type or name: '" + org + "/" + name + "'");
    bool is_private = body.value("private", false);
    if (body.contains("visibility") && body["visibility"].is_string()) is_private = body["visibility"] != "public";
    const std::string url = base_url(ex) + "/" + url_prefix(*key) + key->id();
    if (!store->create(*key, is_private)) {
      return send_json(ex, 409, json{{"error", "You already created this " + type + " repo"}, {"url", url}});
    }
    core::log_info("hub-server: created {} {}{}", type, key->id(), is_private ? " (private)" : "");
    send_json(ex, 200, json{{"url", url}, {"name", key->id()}, {"id", key->id()}});
  }

  // The card's front matter (README.md at `commit`, when stored as a regular file), else nullopt.
  std::optional<json> card_data(const RepoKey& key, const detail::Commit& commit) const {
    const auto it = commit.files.find("README.md");
    if (it == commit.files.end() || it->second.lfs || it->second.size > (1u << 20) ||
        !store->has_object(key, it->second.sha256, it->second.size)) {
      return std::nullopt;
    }
    return detail::parse_card_front_matter(core::read_file(store->object_path(key, it->second.sha256)));
  }

  static std::string iso_time(int64_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return text;
  }

  // A repository as the Hub describes it (model_info, dataset_info, and list_models' entries): id, sha,
  // lastModified, private, the card's front matter (`cardData`) with the tags derived from it, `library_name`
  // and `pipeline_tag` from it, and with `siblings` the file list.
  json repo_json(const RepoKey& key, const detail::Commit& commit, bool siblings_too, bool card_too) const {
    const std::optional<json> card = card_data(key, commit);
    json j = {{"_id", detail::git_blob_sha1_hex(key.type + "/" + key.id()).substr(0, 24)},
              {"id", key.id()},
              {"author", key.org},
              {"sha", commit.id},
              {"lastModified", iso_time(commit.time)},
              {"private", store->is_private(key)},
              {"disabled", false},
              {"gated", false},
              {"downloads", 0},
              {"likes", 0},
              {"tags", card ? detail::card_tags(*card) : json::array()}};
    if (key.type == "model") {
      j["modelId"] = key.id();
      if (card && card->contains("library_name") && (*card)["library_name"].is_string()) j["library_name"] = (*card)["library_name"];
      if (card && card->contains("pipeline_tag") && (*card)["pipeline_tag"].is_string()) j["pipeline_tag"] = (*card)["pipeline_tag"];
    }
    if (card_too && card) j["cardData"] = *card;
    if (siblings_too) {
      json siblings = json::array();
      for (const auto& [path, f] : commit.files) {
        json s = {{"rfilename", path}, {"size", f.size}, {"blobId", f.git_oid}};
        if (f.lfs) s["lfs"] = {{"size", f.size}, {"sha256", f.sha256}, {"pointerSize", lfs_pointer(f.sha256, f.size).size()}};
        if (!f.xet_hash.empty()) s["xetHash"] = f.xet_hash;
        siblings.push_back(s);
      }
      j["siblings"] = siblings;
    }
    return j;
  }

  void repo_info(HttpExchange& ex, const RepoKey& key, Access access, const std::string& revision) {
    if (!require_read(ex, key, access)) return;
    const auto commit = store->resolve(key, revision);
    if (!commit) return send_error(ex, 404, "Invalid rev id: " + revision, "RevisionNotFound");
    send_json(ex, 200, repo_json(key, *commit, true, true));
  }

  // POST /api/validate-yaml, which huggingface_hub calls before committing a README.md: warnings (shown by
  // the client) for a card without front matter, as the Hub gives, or with front matter this server cannot
  // read (it then serves no cardData); never a refusal, since the Hub's YAML reader is wider than ours.
  void validate_yaml(HttpExchange& ex, Access access) {
    if (access == Access::kInvalid) return send_error(ex, 401, "Invalid credentials in Authorization header");
    const json body = parse_json_body(ex);
    if (!body.contains("content") || !body["content"].is_string()) return send_error(ex, 400, "expected {content, repoType}");
    const std::string content = body["content"].get<std::string>();
    json warnings = json::array();
    if (content.rfind("---", 0) != 0) {
      warnings.push_back({{"message", "empty or missing yaml metadata in repo card"}});
    } else if (!detail::parse_card_front_matter(content)) {
      warnings.push_back({{"message", "this hub-server cannot read the card's yaml metadata (a YAML feature beyond "
                                      "the subset it reads); the repository's info will have no cardData"}});
    }
    send_json(ex, 200, json{{"errors", json::array()}, {"warnings", warnings}});
  }

  // GET /api/models and /api/datasets, the way the Hub answers list_models / list_datasets: `author` (the
  // organization), `search` (a part of the id, any case), `filter` (tags every listed repository has, each
  // given), `limit`; `full` adds the file list, `cardData` the card's front matter. Private repositories are
  // listed to a client with a valid token only; one page, sorted by id (no Link header).
  void list_repos(HttpExchange& ex, const std::string& type, Access access) {
    if (access == Access::kInvalid) return send_error(ex, 401, "Invalid credentials in Authorization header");
    auto lower = [](std::string v) {
      for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return v;
    };
    auto flag = [&](const std::string& name) {
      const std::string v = lower(ex.query_param(name));
      return v == "true" || v == "1";
    };
    const std::string author = ex.query_param("author");
    const std::vector<std::string> searches = ex.query_params("search");
    const std::vector<std::string> filters = ex.query_params("filter");
    const bool full = flag("full");
    const bool with_card = flag("cardData") || full;
    std::size_t limit = std::numeric_limits<std::size_t>::max();
    if (const std::string l = ex.query_param("limit"); !l.empty()) {
      if (l.size() > 9 || l.find_first_not_of("0123456789") != std::string::npos) {
        return send_error(ex, 400, "limit must be a whole number");
      }
      limit = std::stoul(l);
    }
    json out = json::array();
    for (const RepoKey& key : store->list(type)) {
      if (out.size() >= limit) break;
      if (!author.empty() && key.org != author) continue;
      bool found = true;
      for (const auto& term : searches) found = found && lower(key.id()).find(lower(term)) != std::string::npos;
      if (!found) continue;
      if (store->is_private(key) && access != Access::kRead && access != Access::kWrite) continue;
      const auto commit = store->resolve(key, "main");
      if (!commit) continue;
      json entry = repo_json(key, *commit, full, with_card);
      bool tagged = true;
      for (const auto& tag : filters) {
        tagged = tagged && std::find(entry["tags"].begin(), entry["tags"].end(), json(tag)) != entry["tags"].end();
      }
      if (tagged) out.push_back(std::move(entry));
    }
    send_json(ex, 200, out);
  }

  // The listing huggingface_hub's list_repo_tree and snapshot_download read (one page: no Link header).
  void tree(HttpExchange& ex, const RepoKey& key, Access access, const std::string& revision, const std::string& dir) {
    if (!require_read(ex, key, access)) return;
    const auto commit = store->resolve(key, revision);
    if (!commit) return send_error(ex, 404, "Invalid rev id: " + revision, "RevisionNotFound");
    const std::string recursive_param = ex.query_param("recursive");
    const bool recursive = recursive_param == "true" || recursive_param == "True" || recursive_param == "1";
    const std::string prefix = dir.empty() ? "" : dir + "/";
    json entries = json::array();
    std::set<std::string> folders;
    auto add_folder = [&](const std::string& path) {
      if (folders.insert(path).second) {
        entries.push_back({{"type", "directory"}, {"oid", detail::git_blob_sha1_hex(path)}, {"size", 0}, {"path", path}});
      }
    };
    for (const auto& [path, f] : commit->files) {
      if (path.rfind(prefix, 0) != 0) continue;
      const std::string rest = path.substr(prefix.size());
      const std::size_t slash = rest.find('/');
      if (!recursive && slash != std::string::npos) {
        add_folder(prefix + rest.substr(0, slash));
        continue;
      }
      for (std::size_t p = rest.find('/'); recursive && p != std::string::npos; p = rest.find('/', p + 1)) {
        add_folder(prefix + rest.substr(0, p));
      }
      json e = {{"type", "file"}, {"oid", f.git_oid}, {"size", f.size}, {"path", path}};
      if (f.lfs) e["lfs"] = {{"oid", f.sha256}, {"size", f.size}, {"pointerSize", lfs_pointer(f.sha256, f.size).size()}};
      if (!f.xet_hash.empty()) e["xetHash"] = f.xet_hash;
      entries.push_back(e);
    }
    if (!dir.empty() && entries.empty()) return send_error(ex, 404, "Entry not found: " + dir, "EntryNotFound");
    send_json(ex, 200, entries);
  }

  void serve_object(HttpExchange& ex, const RepoKey& key, const detail::StoredFile& f, Headers headers) {
    const std::filesystem::path object = store->object_path(key, f.sha256);
    const int fd = ::open(object.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return send_error(ex, 500, "the stored object is missing");
    struct stat st {};
    ::fstat(fd, &st);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    const ByteRange range = parse_range(ex.header("range"), size);
    headers.emplace_back("Accept-Ranges", "bytes");
    headers.emplace_back("Content-Type", "application/octet-stream");
    try {
      if (range.unsatisfiable) {
        headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
        ex.send(416, headers, "", ex.method() == "HEAD");
      } else if (range.partial) {
        headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                  std::to_string(range.first + range.length - 1) + "/" +
                                                  std::to_string(size));
        ex.send_file(206, headers, fd, range.first, range.length, ex.method() == "HEAD");
      } else {
        ex.send_file(200, headers, fd, 0, size, ex.method() == "HEAD");
      }
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }

  void resolve(HttpExchange& ex, const RepoKey& key, Access access, const std::string& revision, const std::string& path) {
    if (ex.method() != "GET" && ex.method() != "HEAD") return send_error(ex, 405, "use GET or HEAD");
    if (!require_read(ex, key, access)) return;
    const auto commit = store->resolve(key, revision);
    if (!commit) return send_error(ex, 404, "Invalid rev id: " + revision, "RevisionNotFound");
    Headers headers = {{"X-Repo-Commit", commit->id}};
    auto it = is_safe_repo_path(path) ? commit->files.find(path) : commit->files.end();
    if (it == commit->files.end()) {
      return send_error(ex, 404, "Entry not found: " + path, "EntryNotFound", headers);
    }
    const detail::StoredFile& f = it->second;
    headers.emplace_back("ETag", quoted(f.git_oid));
    if (f.lfs) {
      // Like the Hub: the metadata rides on the redirect, the bytes come from the storage host.
      const std::string storage_path = "/api/lfs-storage/" + key.type + "s/" + key.org + "/" + key.name + "/" + f.sha256;
      headers.emplace_back("X-Linked-Etag", quoted(f.sha256));
      headers.emplace_back("X-Linked-Size", std::to_string(f.size));
      headers.emplace_back("Location", signed_url(storage_base(ex), storage_path, f.size, commit->id));
      if (!f.xet_hash.empty()) {
        // What the Hub sends for Xet files: hf_xet reconstructs from the hash; others follow Location.
        headers.emplace_back("X-Xet-Hash", f.xet_hash);
        headers.emplace_back("Link", xet_auth_link(ex, key, commit->id));
      }
      return ex.send(302, headers, "", ex.method() == "HEAD");
    }
    serve_object(ex, key, f, headers);
  }

  void lfs_storage(HttpExchange& ex, const RepoKey& key, const std::string& oid) {
    if (ex.method() != "GET" && ex.method() != "HEAD") return send_error(ex, 405, "use GET or HEAD");
    if (!check_signature(ex) || !detail::is_hex_string(oid, 64)) return send_error(ex, 403, "invalid or expired signature");
    uint64_t size = 0;
    try {
      size = std::stoull(ex.query_param("size"));
    } catch (const std::exception&) {
      return send_error(ex, 400, "bad size");
    }
    Headers headers = {{"ETag", quoted(oid)}, {"X-Linked-Etag", quoted(oid)}, {"X-Linked-Size", std::to_string(size)}};
    const std::string commit = ex.query_param("commit");
    if (is_commit_hash(commit)) headers.emplace_back("X-Repo-Commit", commit);
    // huggingface_hub follows a same-host redirect on HEAD, so the Xet metadata must be here as well.
    const auto xet_file = xet->store_for(key).file_by_sha256(oid);
    if (xet_file && xet_file->size == size) {
      headers.emplace_back("X-Xet-Hash", detail::xet_hex(xet_file->hash));
      headers.emplace_back("Link", xet_auth_link(ex, key, is_commit_hash(commit) ? commit : "main"));
      // A HEAD needs no bytes: reassembling happens only when someone downloads over plain HTTP.
      if (ex.method() == "HEAD" && !store->has_object(key, oid, size)) return ex.send(200, headers, "", true);
    }
    if (!store->has_object(key, oid, size) && !materialize_xet(key, oid, size)) {
      return send_error(ex, 404, "object not found", "EntryNotFound");
    }
    serve_object(ex, key, detail::StoredFile{oid, size, true, oid, ""}, headers);
  }

  // Where huggingface_hub asks for the read token of a Xet file (the Hub's `Link: <...>; rel="xet-auth"`).
  std::string xet_auth_link(const HttpExchange& ex, const RepoKey& key, const std::string& revision) const {
    return "<" + base_url(ex) + "/api/" + key.type + "s/" + key.id() + "/xet-read-token/" + revision +
           ">; rel=\"xet-auth\"";
  }

  // Reassembles a Xet file into objects/<sha256> for clients that download over plain HTTP (once; later
  // downloads are served from there). The bytes are checked against the sha256 before they are kept.
  bool materialize_xet(const RepoKey& key, const std::string& sha256, uint64_t size) {
    const auto file = xet->store_for(key).file_by_sha256(sha256);
    if (!file || file->size != size) return false;
    TempFile tmp(store->temp_path(key));
    detail::Sha256 hasher;
    const bool ok = xet->store_for(key).reassemble(*file, [&](const std::string& b) {
      hasher.update(b.data(), b.size());
      tmp.write(b.data(), b.size());
    });
    tmp.finish();
    if (!ok || hasher.hex_digest() != sha256) return false;
    store->adopt_object(key, tmp.path, sha256);
    tmp.release();
    return true;
  }

  void preupload(HttpExchange& ex, const RepoKey& key, Access access, const std::string& revision) {
    if (!require_write(ex, &key, access)) return;
    if (!ex.query_param("create_pr").empty()) return send_error(ex, 501, "pull requests are not supported by this server");
    if (!store->branch_exists(key, revision)) return send_error(ex, 404, "Invalid rev id: " + revision, "RevisionNotFound");
    const json body = parse_json_body(ex);
    if (!body.contains("files") || !body["files"].is_array()) return send_error(ex, 400, "expected {\"files\": [...]}");
    json out = json::array();
    for (const json& f : body["files"]) {
      const std::string path = f.value("path", "");
      if (!is_safe_repo_path(path)) return send_error(ex, 400, "invalid path in repository: '" + path + "'");
      const uint64_t size = f.value("size", uint64_t{0});
      std::string sample;
      if (!detail::base64_decode(f.value("sample", ""), sample)) return send_error(ex, 400, "sample is not base64");
      const bool binary = sample.find('\0') != std::string::npos;
      const bool lfs = size > 0 && (size >= options.lfs_threshold || binary);
      out.push_back({{"path", path}, {"uploadMode", lfs ? "lfs" : "regular"}, {"shouldIgnore", false}});
    }
    send_json(ex, 200, json{{"files", out}});
  }

  void lfs_batch(HttpExchange& ex, const RepoKey& key, Access access) {
    if (ex.method() != "POST") return send_error(ex, 405, "use POST");
    if (!require_write(ex, &key, access)) return;
    const json body = parse_json_body(ex);
    if (body.value("operation", "") != "upload") return send_error(ex, 400, "only the upload operation is served here");
    if (!body.contains("objects") || !body["objects"].is_array() || body["objects"].size() > 1000) {
      return send_error(ex, 400, "expected 1 to 1000 objects");
    }
    bool multipart_ok = false;
    if (body.contains("transfers") && body["transfers"].is_array()) {
      for (const json& t : body["transfers"]) multipart_ok |= t == "multipart";
    }
    const std::string base = base_url(ex);
    const std::string suffix = key.type + "s/" + key.org + "/" + key.name + "/";
    json objects = json::array();
    bool any_multipart = false;
    for (const json& o : body["objects"]) {
      const std::string oid = o.value("oid", "");
      const uint64_t size = o.contains("size") && o["size"].is_number_unsigned() ? o["size"].get<uint64_t>() : 0;
      if (!detail::is_hex_string(oid, 64)) {
        objects.push_back({{"oid", oid}, {"size", size}, {"error", {{"code", 422}, {"message", "oid must be a sha256"}}}});
        continue;
      }
      if (size > options.max_upload_bytes) {
        objects.push_back({{"oid", oid}, {"size", size},
                           {"error", {{"code", 422}, {"message", "object larger than this server accepts"}}}});
        continue;
      }
      json entry = {{"oid", oid}, {"size", size}, {"authenticated", true}};
      if (!store->has_object(key, oid, size)) {
        json actions;
        if (multipart_ok && size >= options.multipart_threshold) {
          any_multipart = true;
          const uint64_t chunk = options.multipart_chunk;
          json header = {{"chunk_size", std::to_string(chunk)}};
          for (uint64_t i = 0, n = (size + chunk - 1) / chunk; i < n; ++i) {
            const uint64_t part_len = std::min(chunk, size - i * chunk);
            header[std::to_string(i + 1)] =
                signed_url(base, "/api/lfs-part/" + suffix + oid + "/" + std::to_string(i + 1), part_len);
          }
          actions["upload"] = {{"href", signed_url(base, "/api/lfs-complete/" + suffix + oid, size)}, {"header", header}};
        } else {
          actions["upload"] = {{"href", signed_url(base, "/api/lfs-upload/" + suffix + oid, size)}};
        }
        actions["verify"] = {{"href", base + "/api/lfs-verify/" + suffix + oid}};
        entry["actions"] = actions;
      }
      objects.push_back(entry);
    }
    ex.send(200, {{"Content-Type", "application/vnd.git-lfs+json"}},
            json{{"transfer", any_multipart ? "multipart" : "basic"}, {"objects", objects}}.dump());
  }

  // Streams the body into a temporary file, hashing it; the caller decides what to do with it.
  std::string receive_to(HttpExchange& ex, TempFile& tmp, uint64_t limit, uint64_t& received) {
    detail::Sha256 hasher;
    received = ex.read_body_to(limit, [&](const char* p, std::size_t n) {
      hasher.update(p, n);
      tmp.write(p, n);
    });
    tmp.finish();
    return hasher.hex_digest();
  }

  void lfs_upload(HttpExchange& ex, const RepoKey& key, const std::string& oid) {
    if (ex.method() != "PUT") return send_error(ex, 405, "use PUT");
    if (!check_signature(ex) || !detail::is_hex_string(oid, 64)) return send_error(ex, 403, "invalid or expired signature");
    const uint64_t size = std::stoull(ex.query_param("size"));
    TempFile tmp(store->temp_path(key));
    uint64_t received = 0;
    const std::string digest = receive_to(ex, tmp, size, received);
    if (received != size || digest != oid) {
      return send_error(ex, 400, "the uploaded bytes do not match the announced sha256 and size; nothing was stored");
    }
    store->adopt_object(key, tmp.path, oid);
    tmp.release();
    send_json(ex, 200, json::object());
  }

  void lfs_part(HttpExchange& ex, const RepoKey& key, const std::string& oid, const std::string& part) {
    if (ex.method() != "PUT") return send_error(ex, 405, "use PUT");
    if (!check_signature(ex) || !detail::is_hex_string(oid, 64) || part.empty() || part.size() > 6 ||
        !std::all_of(part.begin(), part.end(), [](unsigned char c) { return std::isdigit(c); })) {
      return send_error(ex, 403, "invalid or expired signature");
    }
    const uint64_t size = std::stoull(ex.query_param("size"));
    const std::filesystem::path dir = store->parts_dir(key, oid);
    std::filesystem::create_directories(dir);
    TempFile tmp(dir / (part + ".tmp." + std::to_string(::gettid())));
    uint64_t received = 0;
    const std::string digest = receive_to(ex, tmp, size, received);
    if (received != size) return send_error(ex, 400, "part size does not match");
    const std::filesystem::path dest = dir / part;
    if (::rename(tmp.path.c_str(), dest.c_str()) != 0) throw_io(dest.string(), "cannot store the part");
    tmp.release();
    ex.send(200, {{"ETag", quoted(digest)}}, "");
  }

  void lfs_complete(HttpExchange& ex, const RepoKey& key, const std::string& oid) {
    if (ex.method() != "POST") return send_error(ex, 405, "use POST");
    if (!check_signature(ex) || !detail::is_hex_string(oid, 64)) return send_error(ex, 403, "invalid or expired signature");
    const uint64_t size = std::stoull(ex.query_param("size"));
    const json body = parse_json_body(ex);
    if (body.value("oid", "") != oid || !body.contains("parts") || !body["parts"].is_array()) {
      return send_error(ex, 400, "expected {oid, parts: [{partNumber, etag}]}");
    }
    const std::filesystem::path dir = store->parts_dir(key, oid);
    TempFile tmp(store->temp_path(key));
    detail::Sha256 hasher;
    uint64_t total = 0;
    int expected_number = 1;
    for (const json& p : body["parts"]) {
      if (p.value("partNumber", 0) != expected_number) return send_error(ex, 400, "parts must be numbered 1..N in order");
      const std::filesystem::path part = dir / std::to_string(expected_number);
      std::error_code ec;
      if (!std::filesystem::is_regular_file(part, ec)) return send_error(ex, 400, "part " + std::to_string(expected_number) + " was not uploaded");
      const std::string bytes = core::read_file(part);
      if (quoted(detail::sha256_hex(bytes)) != p.value("etag", "") && detail::sha256_hex(bytes) != p.value("etag", "")) {
        return send_error(ex, 400, "etag of part " + std::to_string(expected_number) + " does not match");
      }
      hasher.update(bytes.data(), bytes.size());
      tmp.write(bytes.data(), bytes.size());
      total += bytes.size();
      ++expected_number;
    }
    tmp.finish();
    if (total != size || hasher.hex_digest() != oid) {
      return send_error(ex, 400, "the assembled parts do not match the announced sha256 and size; nothing was stored");
    }
    store->adopt_object(key, tmp.path, oid);
    tmp.release();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    send_json(ex, 200, json::object());
  }

  void lfs_verify(HttpExchange& ex, const RepoKey& key, Access access, const std::string& oid) {
    if (!require_write(ex, &key, access)) return;
    const json body = parse_json_body(ex);
    const uint64_t size = body.contains("size") && body["size"].is_number_unsigned() ? body["size"].get<uint64_t>() : 0;
    if (body.value("oid", "") != oid || !detail::is_hex_string(oid, 64) || !store->has_object(key, oid, size)) {
      return send_error(ex, 404, "object " + oid + " was not uploaded");
    }
    send_json(ex, 200, json::object());
  }

  void commit(HttpExchange& ex, const RepoKey& key, Access access, const std::string& branch) {
    if (ex.method() != "POST") return send_error(ex, 405, "use POST");
    if (!require_write(ex, &key, access)) return;
    if (!ex.query_param("create_pr").empty()) return send_error(ex, 501, "pull requests are not supported by this server");
    const std::string body = ex.read_body(options.max_body_bytes);
    std::istringstream lines(body);
    std::string line, summary, description;
    std::optional<std::string> parent;
    bool have_header = false;
    std::vector<detail::CommitOperation> ops;
    while (std::getline(lines, line)) {
      if (line.empty() || line == "\r") continue;
      json item;
      try {
        item = json::parse(line);
      } catch (const std::exception&) {
        return send_error(ex, 400, "each line of the commit must be JSON");
      }
      const std::string k = item.value("key", "");
      if (!item.contains("value") || !item["value"].is_object()) return send_error(ex, 400, "commit line without a value");
      const json& v = item["value"];
      if (k == "header") {
        if (have_header) return send_error(ex, 400, "two commit headers");
        have_header = true;
        summary = v.value("summary", "");
        description = v.value("description", "");
        if (v.contains("parentCommit") && v["parentCommit"].is_string()) parent = v["parentCommit"].get<std::string>();
        continue;
      }
      const std::string path = v.value("path", "");
      const bool folder = k == "deletedFolder";
      const std::string check = folder && !path.empty() && path.back() == '/' ? path.substr(0, path.size() - 1) : path;
      if (!is_safe_repo_path(check)) return send_error(ex, 400, "invalid path in repository: '" + path + "'");
      if (k == "file") {
        std::string content;
        const std::string encoding = v.value("encoding", "base64");
        if (encoding == "base64") {
          if (!detail::base64_decode(v.value("content", ""), content)) return send_error(ex, 400, "content is not base64");
        } else {
          content = v.value("content", "");
        }
        ops.push_back({detail::CommitOperation::Kind::kAddRegular, path, store->store_bytes(key, content)});
      } else if (k == "lfsFile") {
        const std::string oid = v.value("oid", "");
        if (v.value("algo", "sha256") != "sha256" || !detail::is_hex_string(oid, 64)) {
          return send_error(ex, 400, "lfsFile needs a sha256 oid");
        }
        uint64_t size = 0;
        const auto xet_file = xet->store_for(key).file_by_sha256(oid);
        if (v.contains("size") && v["size"].is_number_unsigned()) {
          size = v["size"].get<uint64_t>();
        } else if (xet_file) {
          size = xet_file->size;
        } else {
          std::error_code ec;
          size = std::filesystem::file_size(store->object_path(key, oid), ec);
          if (ec) return send_error(ex, 422, "LFS object " + oid + " was not uploaded");
        }
        detail::StoredFile stored{oid, size, true, detail::git_blob_sha1_hex(lfs_pointer(oid, size)), ""};
        // An LFS object of this sha256 wins; otherwise the file is served from its Xet reconstruction.
        if (!store->has_object(key, oid, size) && xet_file && xet_file->size == size) {
          stored.xet_hash = detail::xet_hex(xet_file->hash);
        }
        ops.push_back({detail::CommitOperation::Kind::kAddLfs, path, stored});
      } else if (k == "deletedFile" || folder) {
        ops.push_back({folder ? detail::CommitOperation::Kind::kDeleteFolder : detail::CommitOperation::Kind::kDeleteFile,
                       check, {}});
      } else {
        return send_error(ex, 400, "unknown commit operation '" + k + "'");
      }
    }
    if (!have_header) return send_error(ex, 400, "the commit has no header line");
    const detail::CommitOutcome outcome = store->commit(key, branch, summary, description, parent, ops);
    if (outcome.status != 200) return send_error(ex, outcome.status, outcome.message, outcome.error_code);
    core::log_info("hub-server: {} {} <- {} ({} operations)", key.id(), branch, outcome.commit.substr(0, 12), ops.size());
    send_json(ex, 200,
              json{{"success", true}, {"commitOid", outcome.commit}, {"pullRequestUrl", nullptr},
                   {"commitUrl", base_url(ex) + "/" + url_prefix(key) + key.id() + "/commit/" + outcome.commit}});
  }

  // ---- routing ------------------------------------------------------------------------------------

  void handle(HttpExchange& ex) {
    try {
      route(ex);
    } catch (const Error& e) {
      // Names that validate but resolve outside the root (a planted link) land here.
      if (e.kind() != ErrorKind::kInvalidInput || ex.responded()) throw;
      send_error(ex, 400, "invalid repository or path");
    }
  }

  void route(HttpExchange& ex) {
    const auto segs_opt = split_path(ex.path());
    if (!segs_opt) return send_error(ex, 400, "malformed percent-encoding in the path");
    const std::vector<std::string>& s = *segs_opt;
    const Access access = access_of(ex);
    const std::string& m = ex.method();
    core::log_debug("hub-server: {} {}", m, ex.path());
    auto key_of = [](const std::string& types, const std::string& org, const std::string& name) {
      if (types.size() < 2 || types.back() != 's') return std::optional<RepoKey>();
      return detail::RepoStore::make_key(types.substr(0, types.size() - 1), org, name);
    };
    auto bad_repo = [&] { send_error(ex, 400, "invalid repository id or type", "RepoNotFound"); };

    if (!s.empty() && s[0] == "api") {
      if (s.size() == 3 && s[1] == "repos" && s[2] == "create" && m == "POST") return create_repo(ex, access);
      if (s.size() == 2 && s[1] == "validate-yaml" && m == "POST") return validate_yaml(ex, access);
      if (s.size() == 2 && (s[1] == "models" || s[1] == "datasets") && (m == "GET" || m == "HEAD")) {
        return list_repos(ex, s[1].substr(0, s[1].size() - 1), access);
      }
      if (s.size() >= 4 && (s[1] == "models" || s[1] == "datasets")) {
        const auto key = key_of(s[1], s[2], s[3]);
        if (!key) return bad_repo();
        if (s.size() == 4 && (m == "GET" || m == "HEAD")) return repo_info(ex, *key, access, "main");
        if (s.size() >= 6 && s[4] == "revision" && (m == "GET" || m == "HEAD")) return repo_info(ex, *key, access, join(s, 5));
        if (s.size() >= 6 && s[4] == "tree" && (m == "GET" || m == "HEAD")) return tree(ex, *key, access, s[5], join(s, 6));
        if (s.size() >= 6 && s[4] == "preupload" && m == "POST") return preupload(ex, *key, access, join(s, 5));
        if (s.size() >= 6 && s[4] == "commit") return commit(ex, *key, access, join(s, 5));
        if (s.size() >= 5 && s[4] == "xet-write-token" && m == "GET") {
          if (require_write(ex, &*key, access)) xet->issue_token(ex, *key, true, base_url(ex));
          return;
        }
        if (s.size() >= 5 && s[4] == "xet-read-token" && m == "GET") {
          if (require_read(ex, *key, access)) xet->issue_token(ex, *key, false, base_url(ex));
          return;
        }
      }
      if (s.size() >= 6 && s[1].rfind("lfs-", 0) == 0) {
        const auto key = key_of(s[2], s[3], s[4]);
        if (!key) return bad_repo();
        if (s.size() == 6 && s[1] == "lfs-storage") return lfs_storage(ex, *key, s[5]);
        if (s.size() == 6 && s[1] == "lfs-upload") return lfs_upload(ex, *key, s[5]);
        if (s.size() == 7 && s[1] == "lfs-part") return lfs_part(ex, *key, s[5], s[6]);
        if (s.size() == 6 && s[1] == "lfs-complete") return lfs_complete(ex, *key, s[5]);
        if (s.size() == 6 && s[1] == "lfs-verify") return lfs_verify(ex, *key, access, s[5]);
      }
      return send_error(ex, 404, "no such endpoint: " + m + " " + ex.path());
    }
    if (s.size() >= 4 && s[0] == "xet-cas") {
      const auto key = key_of(s[1], s[2], s[3]);
      if (!key) return bad_repo();
      return xet->handle_cas(ex, *key, std::vector<std::string>(s.begin() + 4, s.end()), base_url(ex));
    }
    std::size_t i = 0;
    std::string type = "model";
    if (!s.empty() && (s[0] == "datasets")) {
      type = "dataset";
      i = 1;
    }
    if (s.size() >= i + 6 && s[i + 1].size() > 4 && s[i + 1].substr(s[i + 1].size() - 4) == ".git" && s[i + 2] == "info" &&
        s[i + 3] == "lfs" && s[i + 4] == "objects" && s[i + 5] == "batch") {
      const auto key = detail::RepoStore::make_key(type, s[i], s[i + 1].substr(0, s[i + 1].size() - 4));
      if (!key) return bad_repo();
      return lfs_batch(ex, *key, access);
    }
    if (s.size() >= i + 5 && s[i + 2] == "resolve") {
      const auto key = detail::RepoStore::make_key(type, s[i], s[i + 1]);
      if (!key) return bad_repo();
      return resolve(ex, *key, access, s[i + 3], join(s, i + 4));
    }
    send_error(ex, 404, "no such endpoint: " + m + " " + ex.path());
  }
};

HubServer::HubServer(HubServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HubServer::~HubServer() { stop(); }

void HubServer::open() {
  Impl& s = *impl_;
  if (s.options.root.empty()) throw Error(ErrorKind::kUsage, "hub-server", "no --root folder given");
  s.load_tokens();
  s.store = std::make_unique<detail::RepoStore>(s.options.root);
  // sendfile() has no MSG_NOSIGNAL: a client that hangs up mid-file must not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
  unsigned char key[32];
  if (RAND_bytes(key, sizeof key) != 1) throw Error(ErrorKind::kInternal, "hub-server", "no randomness for the URL key");
  s.secret.assign(reinterpret_cast<const char*>(key), sizeof key);
  s.xet = std::make_unique<detail::XetService>(*s.store, s.secret + "xet");
}

void HubServer::handle(detail::HttpExchange& exchange) { impl_->handle(exchange); }

void HubServer::start() {
  Impl& s = *impl_;
  open();
  detail::HttpServerLimits limits;
  limits.header_timeout_s = s.options.header_timeout_s;
  limits.io_timeout_s = s.options.io_timeout_s;
  limits.max_connections = s.options.max_connections;
  limits.max_connections_per_address = s.options.max_connections_per_address;
  s.http = std::make_unique<detail::HttpServer>(limits, [this](HttpExchange& ex) { impl_->handle(ex); });
  s.http->listen(s.options.host, s.options.port);
}

void HubServer::stop() {
  if (impl_ && impl_->http) impl_->http->stop();
  request_stop();
}

void HubServer::wait() {
  std::unique_lock lock(impl_->stop_mutex);
  impl_->stop_cv.wait(lock, [&] { return impl_->stop_requested; });
}

void HubServer::request_stop() noexcept {
  {
    std::lock_guard lock(impl_->stop_mutex);
    impl_->stop_requested = true;
  }
  impl_->stop_cv.notify_all();
}

uint16_t HubServer::port() const noexcept { return impl_->http ? impl_->http->port() : 0; }

std::string HubServer::endpoint() const {
  const std::string& h = impl_->options.host;
  const std::string host = h == "0.0.0.0" ? "127.0.0.1" : (h.find(':') != std::string::npos ? "[" + h + "]" : h);
  return "http://" + host + ":" + std::to_string(port());
}

}  // namespace detrq::hub
