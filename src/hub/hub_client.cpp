// HubClient: resolve-endpoint metadata, resumable sha256-checked downloads into the shared cache,
// and uploads through preupload, LFS batch (basic or multipart) and the ndjson commit endpoint.
#include "detrq/hub/hub_client.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"
#include "detrq/hub/hub_cache.h"
#include "detrq/hub/http_client.h"
#include "hub/digest.h"
#include "hub/hub_answers.h"

namespace detrq::hub {
namespace {

using nlohmann::json;

constexpr int kMaxRedirects = 10;
// A download may be cut many times; each cut that made progress is not counted against the retries.
constexpr int kMaxDownloadAttempts = 10000;

std::string without_query(const std::string& url) { return url.substr(0, url.find('?')); }

std::string normalize_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

bool is_transient(long status) { return status == 429 || status >= 500; }

void backoff(int attempt) {
  const int ms = std::min(5000, 100 << std::min(attempt, 6));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string server_message(const HttpResponse& r) {
  std::string msg = r.header("x-error-message");
  if (msg.empty()) {
    try {
      const json j = json::parse(r.body);
      if (j.contains("error") && j["error"].is_string()) msg = j["error"].get<std::string>();
    } catch (const std::exception&) {
    }
  }
  if (msg.size() > 300) msg = msg.substr(0, 300) + "...";
  return msg;
}

// Turns an HTTP failure into an Error that says what happened and what to do; never mentions the token.
// `config`: whether the request carried a token (HF_TOKEN or the token file) and from where, so that a 401
// says whether the token was refused (and which one: the variable or the file) or there was none.
[[noreturn]] void throw_http(const HttpResponse& r, const std::string& what, const HubConfig& config) {
  const bool token_sent = !config.token.empty();
  const std::string code = r.header("x-error-code");
  const std::string detail = server_message(r);
  const std::string said = detail.empty() ? "" : " (server: " + detail + ")";
  std::string problem, hint;
  switch (r.status) {
    case 401:
      problem = (token_sent ? "the token was refused, HTTP 401" : "authentication failed, no token was sent, HTTP 401") + said;
      hint = token_sent ? (config.token_source.empty() ? std::string("the token") : "the token from " + config.token_source) +
                              " is not valid for " + config.endpoint +
                              ": replace it with a valid one (HF_TOKEN is read first, then $HF_HOME/token or HF_TOKEN_PATH)"
                        : "set HF_TOKEN (or log in so that $HF_HOME/token exists); private repositories need a token";
      break;
    case 403:
      problem = "not allowed, HTTP 403" + said;
      hint = "use a token with write access for this repository";
      break;
    case 404:
      if (code == "RevisionNotFound") {
        problem = "revision not found, HTTP 404" + said;
        hint = "check --revision (a branch, tag or 40-hex commit id)";
      } else if (code == "EntryNotFound") {
        problem = "file not found in the repository at that revision, HTTP 404" + said;
        hint = "check the file names (--files) against the repository";
      } else {
        problem = "repository not found, HTTP 404" + said;
        hint = "check --hf-repo and HF_ENDPOINT; a private repository needs HF_TOKEN";
      }
      break;
    case 409:
      problem = "conflict, HTTP 409" + said;
      hint = "the branch moved or the repository exists already; fetch the new head and retry";
      break;
    case 413:
      problem = "request too large for the server, HTTP 413" + said;
      hint = "the server limits body sizes; large files must go through LFS";
      break;
    case 429:
      problem = "rate limited, HTTP 429" + said;
      hint = "wait a minute and retry";
      break;
    default:
      problem = "HTTP " + std::to_string(r.status) + said;
      hint = r.status >= 500 ? "the server failed; retry later" : "check the request";
  }
  throw Error(ErrorKind::kNetwork, what, problem, hint);
}

// An flock on <cache>/.locks/<repo folder>/<etag>.lock: the same file huggingface_hub locks, so the two
// never download one blob at the same time.
class BlobLock {
 public:
  explicit BlobLock(const std::filesystem::path& path) {
    std::filesystem::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw_io(path.string(), "cannot open the download lock");
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw_io(path.string(), "cannot take the download lock");
    }
  }
  ~BlobLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

struct FileMetadata {
  std::string commit;
  std::string etag;
  std::optional<uint64_t> size;
  std::string location;  // where the bytes are (the storage URL after a redirect to another host)
};

// The per-call helpers live in a class local to this file so the public header stays small. Each public
// call makes its own session (its own connection), so one HubClient may serve several threads.
class HubSession {
 public:
  HubSession(const HubConfig& config, int max_retries)
      : config_(config), max_retries_(max_retries), endpoint_origin_(url_origin(config.endpoint)) {}

  // Credentials go only to the endpoint's own origin, never to a storage host a redirect names.
  void add_auth(HttpRequest& r) const {
    if (!config_.token.empty() && url_origin(r.url) == endpoint_origin_) {
      r.headers.emplace_back("Authorization", "Bearer " + config_.token);
    }
  }

  // One request with retries on transport errors, 429 and 5xx (for idempotent requests only).
  HttpResponse send(HttpRequest r, bool idempotent, const BodySink& sink = {}, const ProgressCallback& progress = {}) {
    add_auth(r);
    for (int attempt = 0;; ++attempt) {
      try {
        HttpResponse resp = http_.perform(r, sink, progress);
        if (is_transient(resp.status) && (idempotent || resp.status == 429 || resp.status == 502 ||
                                          resp.status == 503 || resp.status == 504) &&
            attempt < max_retries_) {
          core::log_warn("{} {}: HTTP {}, retrying", r.method, without_query(r.url), resp.status);
          backoff(attempt);
          continue;
        }
        return resp;
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kNetwork || !idempotent || attempt >= max_retries_) throw;
        core::log_warn("{} {}: {}, retrying", r.method, without_query(r.url), e.problem());
        backoff(attempt);
      }
    }
  }

  HttpResponse send_json(const std::string& method, const std::string& url, const json& body, bool idempotent,
                         const std::string& content_type = "application/json") {
    HttpRequest r;
    r.method = method;
    r.url = url;
    r.body = body.dump();
    r.timeout_s = 300;
    r.headers.emplace_back("Content-Type", content_type);
    if (content_type.find("git-lfs") != std::string::npos) r.headers.emplace_back("Accept", content_type);
    return send(std::move(r), idempotent);
  }

  FileMetadata head_metadata(const std::string& url) {
    std::string current = url;
    for (int hop = 0; hop < kMaxRedirects; ++hop) {
      HttpRequest r;
      r.method = "HEAD";
      r.url = current;
      r.timeout_s = 60;
      HttpResponse resp = send(r, true);
      if (resp.status >= 300 && resp.status < 400 && !resp.header("location").empty()) {
        const std::string target = resolve_url(current, resp.header("location"));
        if (url_origin(target) != endpoint_origin_) {
          // Another host (storage): its metadata is on this redirect, like the Hub's CDN redirects.
          return metadata_from(resp, target, true);
        }
        current = target;
        continue;
      }
      if (resp.status != 200) throw_http(resp, url, config_);
      return metadata_from(resp, current, false);
    }
    throw Error(ErrorKind::kNetwork, url, "too many redirects", "is HF_ENDPOINT a Hugging Face Hub?");
  }

  // Downloads `meta.location` into `blob`, resuming `incomplete`, checking size and (for LFS) sha256.
  void download_blob(const FileMetadata& meta, const std::filesystem::path& incomplete, const std::filesystem::path& blob,
                     const std::string& label) {
    const bool check_sha256 = detail::is_hex_string(meta.etag, 64);
    for (int full_restart = 0; full_restart < 2; ++full_restart) {
      const int fd = ::open(incomplete.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) throw_io(incomplete.string(), std::string("cannot open: ") + std::strerror(errno));
      struct FdCloser {
        int fd;
        ~FdCloser() { ::close(fd); }
      } closer{fd};
      struct stat st {};
      ::fstat(fd, &st);
      uint64_t have = static_cast<uint64_t>(st.st_size);
      if (meta.size && have > *meta.size) have = 0;  // longer than the file: start over
      if (::ftruncate(fd, static_cast<off_t>(have)) != 0) throw_io(incomplete.string(), "cannot truncate");
      ::lseek(fd, static_cast<off_t>(have), SEEK_SET);
      auto hasher = std::make_unique<detail::Sha256>();
      if (check_sha256 && have > 0) detail::sha256_update_from_file(*hasher, incomplete, have);
      if (have > 0) core::log_info("{}: resuming at {} bytes", label, have);

      core::Progress progress(label, meta.size ? static_cast<int64_t>(*meta.size) : 0, "B");
      progress.advance(static_cast<int64_t>(have));
      int failures_without_progress = 0;
      bool done = false;
      for (int attempt = 0; attempt < kMaxDownloadAttempts && !done; ++attempt) {
        if (meta.size && have == *meta.size) break;
        const uint64_t at_start = have;
        bool restart = false;
        std::optional<HttpResponse> fatal;
        std::string url = meta.location;
        try {
          for (int hop = 0;; ++hop) {
            if (hop >= kMaxRedirects) throw Error(ErrorKind::kNetwork, label, "too many redirects");
            HttpRequest r;
            r.url = url;
            r.headers.emplace_back("Accept-Encoding", "identity");
            if (have > 0) r.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
            add_auth(r);
            const HttpResponse resp = http_.perform(r, [&](const char* p, std::size_t n) {
              const char* q = p;
              std::size_t left = n;
              while (left > 0) {
                const ssize_t w = ::write(fd, q, left);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) return false;
                q += w;
                left -= static_cast<std::size_t>(w);
              }
              if (check_sha256) hasher->update(p, n);
              have += n;
              progress.advance(static_cast<int64_t>(n));
              return true;
            });
            if (resp.status >= 300 && resp.status < 400 && !resp.header("location").empty()) {
              url = resolve_url(url, resp.header("location"));
              continue;
            }
            if (resp.status == 416 && meta.size && have == *meta.size) {
              done = true;
            } else if (resp.status == 200 && at_start > 0) {
              // The server ignored Range and sent the whole file after our prefix: start over cleanly.
              restart = true;
            } else if (resp.status == 200 || resp.status == 206) {
              if (resp.status == 206 && resp.header("content-range").rfind("bytes " + std::to_string(at_start) + "-", 0) != 0) {
                restart = true;
              } else if (!meta.size || have == *meta.size) {
                done = true;
              }
            } else if (is_transient(resp.status)) {
              throw Error(ErrorKind::kNetwork, label, "HTTP " + std::to_string(resp.status));
            } else {
              fatal = resp;
            }
            break;
          }
        } catch (const Error& e) {
          if (e.kind() != ErrorKind::kNetwork) throw;
          failures_without_progress = have > at_start ? 0 : failures_without_progress + 1;
          if (failures_without_progress > max_retries_) throw;
          core::log_debug("{}: {} at {} bytes, resuming", label, e.problem(), have);
          if (failures_without_progress > 0) backoff(failures_without_progress - 1);
          continue;
        }
        if (fatal) throw_http(*fatal, label, config_);
        if (restart) {
          if (::ftruncate(fd, 0) != 0) throw_io(incomplete.string(), "cannot truncate");
          ::lseek(fd, 0, SEEK_SET);
          have = 0;
          hasher = std::make_unique<detail::Sha256>();
        }
      }
      progress.finish();
      if (meta.size && have != *meta.size) {
        throw Error(ErrorKind::kNetwork, label, "download ended at " + std::to_string(have) + " of " +
                                                    std::to_string(*meta.size) + " bytes", "retry; it resumes");
      }
      if (check_sha256) {
        const std::string got = hasher->hex_digest();
        if (got != meta.etag) {
          core::log_warn("{}: sha256 mismatch ({} instead of {}), downloading again", label, got, meta.etag);
          ::ftruncate(fd, 0);
          if (full_restart == 0) continue;
          std::error_code ec;
          std::filesystem::remove(incomplete, ec);
          throw Error(ErrorKind::kNetwork, label, "the downloaded bytes do not match their sha256",
                      "the server or a proxy corrupts data; nothing was kept");
        }
      }
      if (::fsync(fd) != 0) throw_io(incomplete.string(), "fsync failed");
      if (::rename(incomplete.c_str(), blob.c_str()) != 0) throw_io(blob.string(), "cannot move the blob into place");
      return;
    }
  }

  HttpClient& http() { return http_; }

 private:
  FileMetadata metadata_from(const HttpResponse& resp, const std::string& location, bool redirected) {
    FileMetadata m;
    m.commit = resp.header("x-repo-commit");
    const std::string linked = resp.header("x-linked-etag");
    m.etag = normalize_etag(linked.empty() ? resp.header("etag") : linked);
    std::string size = resp.header("x-linked-size");
    if (size.empty() && !redirected) size = resp.header("content-length");
    if (!size.empty()) {
      try {
        m.size = std::stoull(size);
      } catch (const std::exception&) {
      }
    }
    m.location = location;
    if (m.commit.empty() || m.etag.empty()) {
      throw Error(ErrorKind::kNetwork, without_query(location), "the server sent no commit or etag for the file",
                  "is HF_ENDPOINT a Hugging Face Hub?");
    }
    return m;
  }

  const HubConfig& config_;
  int max_retries_;
  std::string endpoint_origin_;
  HttpClient http_;
};

std::string resolve_url_for(const HubConfig& c, const std::string& repo, const std::string& revision,
                            const std::string& path) {
  return c.endpoint + "/" + repo + "/resolve/" + url_encode_component(revision) + "/" + url_encode_path(path);
}

std::filesystem::path place_in_local_dir(const std::filesystem::path& blob, const std::filesystem::path& local_dir,
                                         const std::string& path) {
  if (!is_safe_repo_path(path)) throw_invalid(path, "path would land outside --local-dir", "refusing it");
  const std::filesystem::path dest = local_dir / path;
  core::AtomicFile out(dest);
  const int fd = ::open(blob.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io(blob.string(), "cannot open the cached blob");
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw_io(blob.string(), "read failed");
    }
    if (n == 0) break;
    out.write(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  out.commit();
  return dest;
}

}  // namespace

HubClient::HubClient(HubConfig config) : config_(std::move(config)) {}

std::filesystem::path HubClient::download_file(const std::string& repo_id, const std::string& path,
                                               const std::string& revision,
                                               const std::optional<std::filesystem::path>& local_dir) {
  HubCache cache(config_.cache_dir, repo_id);
  if (!is_safe_repo_path(path)) throw_invalid(path, "not a valid path inside a repository", "use a relative path");
  const std::string label = repo_id + "/" + path;
  auto finish = [&](const std::filesystem::path& snapshot_file) {
    if (!local_dir) return snapshot_file;
    return place_in_local_dir(std::filesystem::canonical(snapshot_file), *local_dir, path);
  };
  auto cached = [&]() -> std::optional<std::filesystem::path> {
    if (auto commit = cache.resolve_offline(revision)) {
      const std::filesystem::path p = cache.snapshot_path(*commit, path);
      std::error_code ec;
      if (std::filesystem::exists(p, ec)) return p;
    }
    return std::nullopt;
  };
  if (config_.offline) {
    if (auto p = cached()) return finish(*p);
    throw Error(ErrorKind::kNetwork, label, "not in the cache and HF_HUB_OFFLINE is set",
                "download it once online, or unset HF_HUB_OFFLINE");
  }
  // A commit id names immutable content: a cached copy needs no network at all.
  if (is_commit_hash(revision)) {
    if (auto p = cached()) return finish(*p);
  }
  HubSession session(config_, max_retries_);
  FileMetadata meta;
  try {
    meta = session.head_metadata(resolve_url_for(config_, repo_id, revision, path));
  } catch (const Error& e) {
    // Like huggingface_hub: when the Hub cannot be reached, a cached copy of the revision will do.
    if (e.problem().find("HTTP") == std::string::npos) {
      if (auto p = cached()) {
        core::log_warn("{}: {}; using the cached copy", label, e.problem());
        return finish(*p);
      }
    }
    throw;
  }
  const std::filesystem::path snapshot_file = cache.snapshot_path(meta.commit, path);
  const std::filesystem::path blob = cache.blob_path(meta.etag);
  if (revision != meta.commit) cache.write_ref(revision, meta.commit);
  std::error_code ec;
  if (!std::filesystem::exists(blob, ec)) {
    BlobLock lock(config_.cache_dir / ".locks" / repo_folder_name(repo_id) / (meta.etag + ".lock"));
    if (!std::filesystem::exists(blob, ec)) {
      std::filesystem::create_directories(blob.parent_path());
      session.download_blob(meta, cache.incomplete_path(meta.etag), blob, label);
    }
  }
  cache.link_snapshot(meta.commit, path, meta.etag);
  core::log_debug("{}: {} (commit {})", label, snapshot_file.string(), meta.commit);
  return finish(snapshot_file);
}

RepoInfo HubClient::repo_info(const std::string& repo_id, const std::string& revision) {
  if (!is_valid_repo_id(repo_id)) throw_invalid(repo_id, "not a valid repository id", "use ORG/NAME");
  HubSession session(config_, max_retries_);
  HttpRequest r;
  r.url = config_.endpoint + "/api/models/" + repo_id + "/revision/" + url_encode_component(revision);
  r.timeout_s = 60;
  const HttpResponse resp = session.send(r, true);
  if (resp.status != 200) throw_http(resp, repo_id + "@" + revision, config_);
  RepoInfo info = detail::parse_repo_info_answer(resp.body, repo_id);
  return info;
}

std::filesystem::path HubClient::snapshot_download(const std::string& repo_id, const std::string& revision,
                                                   const std::vector<std::string>& files,
                                                   const std::optional<std::filesystem::path>& local_dir) {
  HubCache cache(config_.cache_dir, repo_id);
  if (config_.offline) {
    const auto commit = cache.resolve_offline(revision);
    if (!commit) {
      throw Error(ErrorKind::kNetwork, repo_id, "revision '" + revision + "' is not in the cache and HF_HUB_OFFLINE is set",
                  "download it once online, or unset HF_HUB_OFFLINE");
    }
    for (const std::string& f : files) download_file(repo_id, f, *commit, local_dir);
    return local_dir ? *local_dir : cache.snapshot_dir(*commit);
  }
  if (!files.empty()) {
    // Named files need no listing: the first one pins the commit, the rest are fetched at that commit.
    download_file(repo_id, files[0], revision, local_dir);
    const auto commit = cache.resolve_offline(revision);
    if (!commit) throw Error(ErrorKind::kInternal, repo_id, "the revision was not recorded in refs/", "a bug");
    for (std::size_t i = 1; i < files.size(); ++i) download_file(repo_id, files[i], *commit, local_dir);
    return local_dir ? *local_dir : cache.snapshot_dir(*commit);
  }
  const RepoInfo info = repo_info(repo_id, revision);
  std::vector<std::string> wanted = files;
  if (wanted.empty()) {
    for (const RepoFileInfo& f : info.files) wanted.push_back(f.path);
  }
  for (const std::string& f : wanted) {
    if (!is_safe_repo_path(f)) throw_invalid(f, "the server listed a path outside the repository", "refusing it");
    download_file(repo_id, f, info.sha, local_dir);
  }
  if (revision != info.sha) cache.write_ref(revision, info.sha);
  std::filesystem::create_directories(cache.snapshot_dir(info.sha));
  return local_dir ? *local_dir : cache.snapshot_dir(info.sha);
}

bool HubClient::create_repo(const std::string& repo_id, bool is_private) {
  const std::size_t slash = repo_id.find('/');
  if (!is_valid_repo_id(repo_id) || slash == std::string::npos) {
    throw_invalid(repo_id, "not a valid repository id", "use ORG/NAME");
  }
  if (config_.offline) throw Error(ErrorKind::kNetwork, repo_id, "cannot create a repository offline", "unset HF_HUB_OFFLINE");
  HubSession session(config_, max_retries_);
  const json body = {{"name", repo_id.substr(slash + 1)}, {"organization", repo_id.substr(0, slash)},
                     {"type", "model"}, {"private", is_private}};
  // Creating is idempotent for us: a retry that finds the repository made counts as done.
  const HttpResponse resp = session.send_json("POST", config_.endpoint + "/api/repos/create", body, true);
  if (resp.status == 200 || resp.status == 201) return true;
  if (resp.status == 409) return false;
  throw_http(resp, repo_id, config_);
}

CommitResult HubClient::upload_files(const std::string& repo_id, const std::vector<UploadItem>& items,
                                     const std::string& message, const std::string& revision,
                                     const std::optional<std::string>& parent_commit) {
  if (!is_valid_repo_id(repo_id)) throw_invalid(repo_id, "not a valid repository id", "use ORG/NAME");
  if (items.empty()) throw Error(ErrorKind::kUsage, repo_id, "nothing to upload", "give at least one --file");
  if (config_.offline) throw Error(ErrorKind::kNetwork, repo_id, "cannot upload offline", "unset HF_HUB_OFFLINE");
  struct Prepared {
    const UploadItem* item;
    uint64_t size;
    std::string sample;
    std::string sha256;
    bool lfs = false;
  };
  std::vector<Prepared> files;
  for (const UploadItem& it : items) {
    if (!is_safe_repo_path(it.path_in_repo)) {
      throw_invalid(it.path_in_repo, "not a valid path inside a repository", "use a relative path without '..'");
    }
    std::error_code ec;
    if (!std::filesystem::is_regular_file(it.local, ec)) throw_io(it.local.string(), "not a readable file");
    Prepared p{&it, std::filesystem::file_size(it.local), {}, {}};
    {
      const int fd = ::open(it.local.c_str(), O_RDONLY | O_CLOEXEC);
      char buf[512];
      const ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
      if (fd >= 0) ::close(fd);
      if (n < 0) throw_io(it.local.string(), "cannot read");
      p.sample.assign(buf, static_cast<std::size_t>(n));
    }
    p.sha256 = detail::sha256_file_hex(it.local);
    files.push_back(std::move(p));
  }
  HubSession session(config_, max_retries_);
  const std::string rev = url_encode_component(revision);
  const std::string api = config_.endpoint + "/api/models/" + repo_id;

  // 1. Which files go through LFS: the server decides.
  json pre = {{"files", json::array()}};
  for (const Prepared& p : files) {
    pre["files"].push_back({{"path", p.item->path_in_repo}, {"sample", detail::base64_encode(p.sample)}, {"size", p.size}});
  }
  HttpResponse resp = session.send_json("POST", api + "/preupload/" + rev, pre, true);
  if (resp.status != 200) throw_http(resp, repo_id + "@" + revision, config_);
  for (const auto& [path, lfs] : detail::parse_preupload_answer(resp.body, repo_id)) {
    for (Prepared& p : files) {
      if (p.item->path_in_repo == path) p.lfs = lfs;
    }
  }
  for (Prepared& p : files) {
    if (p.size == 0) p.lfs = false;  // empty files cannot be LFS objects
  }

  // 2. LFS objects through the batch API.
  std::vector<Prepared*> lfs;
  for (Prepared& p : files)
    if (p.lfs) lfs.push_back(&p);
  if (!lfs.empty()) {
    json batch = {{"operation", "upload"}, {"transfers", {"basic", "multipart"}}, {"hash_algo", "sha256"},
                  {"ref", {{"name", revision}}}, {"objects", json::array()}};
    for (const Prepared* p : lfs) batch["objects"].push_back({{"oid", p->sha256}, {"size", p->size}});
    resp = session.send_json("POST", config_.endpoint + "/" + repo_id + ".git/info/lfs/objects/batch", batch, true,
                             "application/vnd.git-lfs+json");
    if (resp.status != 200) throw_http(resp, repo_id + " (LFS batch)", config_);
    for (const detail::LfsBatchObject& o : detail::parse_lfs_batch_answer(resp.body, repo_id)) {
      const Prepared* p = nullptr;
      for (const Prepared* q : lfs)
        if (q->sha256 == o.oid) p = q;
      if (!p) continue;
      if (!o.error.empty()) {
        throw Error(ErrorKind::kNetwork, p->item->local.string(), "the server refused the LFS object: " + o.error);
      }
      if (!o.upload) {
        core::log_info("{}: already on the server", p->item->path_in_repo);
        continue;
      }
      const std::string& href = o.href;
      const auto start = std::chrono::steady_clock::now();
      core::Progress progress("upload " + p->item->path_in_repo, static_cast<int64_t>(p->size), "B");
      if (o.chunk_size > 0) {
        const uint64_t chunk = o.chunk_size;
        const uint64_t n = (p->size + chunk - 1) / chunk;
        json parts = json::array();
        for (uint64_t i = 0; i < n; ++i) {
          const std::string key = std::to_string(i + 1);
          const auto url = o.part_urls.find(i + 1);
          if (url == o.part_urls.end()) throw Error(ErrorKind::kNetwork, repo_id, "multipart answer lacks part " + key);
          HttpRequest r;
          r.method = "PUT";
          r.url = url->second;
          r.body_file = p->item->local;
          r.body_offset = i * chunk;
          r.body_size = std::min(chunk, p->size - i * chunk);
          const HttpResponse pr = session.send(r, true);
          if (pr.status != 200 && pr.status != 201) throw_http(pr, p->item->path_in_repo + " part " + key, config_);
          parts.push_back({{"partNumber", i + 1}, {"etag", pr.header("etag")}});
          progress.advance(static_cast<int64_t>(r.body_size));
        }
        resp = session.send_json("POST", href, json{{"oid", p->sha256}, {"parts", parts}}, true,
                                 "application/vnd.git-lfs+json");
        if (resp.status != 200 && resp.status != 201) throw_http(resp, p->item->path_in_repo + " (multipart completion)", config_);
      } else {
        HttpRequest r;
        r.method = "PUT";
        r.url = href;
        r.body_file = p->item->local;
        r.body_size = p->size;
        r.headers = o.headers;
        int64_t shown = 0;
        const HttpResponse pr = session.send(r, true, {}, [&](uint64_t now, uint64_t) {
          progress.advance(static_cast<int64_t>(now) - shown);
          shown = static_cast<int64_t>(now);
        });
        if (pr.status != 200 && pr.status != 201) throw_http(pr, p->item->path_in_repo + " (LFS upload)", config_);
      }
      progress.finish();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      core::log_info("uploaded {} ({} bytes, {:.1f} MB/s)", p->item->path_in_repo, p->size,
                     s > 0 ? static_cast<double>(p->size) / 1e6 / s : 0.0);
      if (!o.verify_href.empty()) {
        resp = session.send_json("POST", o.verify_href, json{{"oid", p->sha256}, {"size", p->size}}, true,
                                 "application/vnd.git-lfs+json");
        if (resp.status != 200) throw_http(resp, p->item->path_in_repo + " (LFS verify)", config_);
      }
    }
  }

  // 3. One commit carrying every file.
  std::string ndjson;
  json header = {{"summary", message}, {"description", ""}};
  if (parent_commit) header["parentCommit"] = *parent_commit;
  ndjson += json{{"key", "header"}, {"value", header}}.dump() + "\n";
  for (const Prepared& p : files) {
    if (p.lfs) {
      ndjson += json{{"key", "lfsFile"},
                     {"value", {{"path", p.item->path_in_repo}, {"algo", "sha256"}, {"oid", p.sha256}, {"size", p.size}}}}
                    .dump() +
                "\n";
    } else {
      ndjson += json{{"key", "file"},
                     {"value", {{"content", detail::base64_encode(core::read_file(p.item->local))},
                                {"path", p.item->path_in_repo},
                                {"encoding", "base64"}}}}
                    .dump() +
                "\n";
    }
  }
  HttpRequest r;
  r.method = "POST";
  r.url = api + "/commit/" + rev;
  r.body = std::move(ndjson);
  r.timeout_s = 600;
  r.headers.emplace_back("Content-Type", "application/x-ndjson");
  // A commit is not idempotent: only answers that say it was not processed (429, 502-504) are retried.
  resp = session.send(std::move(r), false);
  if (resp.status != 200 && resp.status != 201) throw_http(resp, repo_id + "@" + revision + " (commit)", config_);
  CommitResult result = detail::parse_commit_answer(resp.body, repo_id);
  return result;
}

// ---- the answers' parsing (hub_answers.h) ---------------------------------------------------------------

namespace detail {

namespace {

[[noreturn]] void malformed(const std::string& repo_id, const std::string& what) {
  throw Error(ErrorKind::kNetwork, repo_id, "the server sent a malformed " + what, "is HF_ENDPOINT a Hugging Face Hub?");
}

json parse_answer(const std::string& body, const std::string& repo_id, const std::string& what) {
  try {
    json j = json::parse(body);
    if (!j.is_object()) malformed(repo_id, what + " (not a JSON object)");
    return j;
  } catch (const json::exception&) {
    malformed(repo_id, what + " (not JSON)");
  }
}

// A string member, or `fallback` when absent; present with another type is malformed.
std::string string_member(const json& j, const char* name, const std::string& fallback, const std::string& repo_id,
                          const std::string& what) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) malformed(repo_id, what + " ('" + name + "' is not a string)");
  return it->get<std::string>();
}

}  // namespace

RepoInfo parse_repo_info_answer(const std::string& body, const std::string& repo_id) {
  const std::string what = "repository information";
  const json j = parse_answer(body, repo_id, what);
  RepoInfo info;
  info.id = string_member(j, "id", repo_id, repo_id, what);
  info.sha = string_member(j, "sha", "", repo_id, what);
  if (const auto p = j.find("private"); p != j.end() && p->is_boolean()) info.is_private = p->get<bool>();
  if (const auto sib = j.find("siblings"); sib != j.end() && sib->is_array()) {
    for (const json& s : *sib) {
      if (!s.is_object()) malformed(repo_id, what + " (a sibling is not an object)");
      RepoFileInfo f;
      f.path = string_member(s, "rfilename", "", repo_id, what);
      if (const auto size = s.find("size"); size != s.end() && size->is_number_unsigned()) f.size = size->get<uint64_t>();
      if (const auto lfs = s.find("lfs"); lfs != s.end() && lfs->is_object()) {
        f.lfs_sha256 = string_member(*lfs, "sha256", "", repo_id, what);
      }
      info.files.push_back(std::move(f));
    }
  }
  if (!is_commit_hash(info.sha)) throw Error(ErrorKind::kNetwork, repo_id, "the server sent no commit id");
  return info;
}

std::map<std::string, bool> parse_preupload_answer(const std::string& body, const std::string& repo_id) {
  const std::string what = "preupload answer";
  const json j = parse_answer(body, repo_id, what);
  const auto files = j.find("files");
  if (files == j.end() || !files->is_array()) malformed(repo_id, what + " (no 'files' list)");
  std::map<std::string, bool> lfs;
  for (const json& f : *files) {
    if (!f.is_object()) malformed(repo_id, what + " (an entry is not an object)");
    const std::string path = string_member(f, "path", "", repo_id, what);
    const std::string mode = string_member(f, "uploadMode", "", repo_id, what);
    if (path.empty() || mode.empty()) malformed(repo_id, what + " (an entry lacks 'path' or 'uploadMode')");
    lfs[path] = mode == "lfs";
  }
  return lfs;
}

std::vector<LfsBatchObject> parse_lfs_batch_answer(const std::string& body, const std::string& repo_id) {
  const std::string what = "LFS batch answer";
  const json j = parse_answer(body, repo_id, what);
  std::vector<LfsBatchObject> out;
  const auto objects = j.find("objects");
  if (objects == j.end()) return out;
  if (!objects->is_array()) malformed(repo_id, what + " ('objects' is not a list)");
  for (const json& o : *objects) {
    if (!o.is_object()) malformed(repo_id, what + " (an object entry is not an object)");
    LfsBatchObject b;
    b.oid = string_member(o, "oid", "", repo_id, what);
    if (const auto e = o.find("error"); e != o.end()) {
      b.error = e->is_object() ? string_member(*e, "message", "?", repo_id, what) : "?";
      if (b.error.empty()) b.error = "?";
      out.push_back(std::move(b));
      continue;
    }
    const auto actions = o.find("actions");
    if (actions == o.end() || actions->is_null()) {
      out.push_back(std::move(b));
      continue;
    }
    if (!actions->is_object()) malformed(repo_id, what + " ('actions' is not an object)");
    if (const auto verify = actions->find("verify"); verify != actions->end()) {
      if (!verify->is_object()) malformed(repo_id, what + " ('verify' is not an object)");
      b.verify_href = string_member(*verify, "href", "", repo_id, what);
      if (b.verify_href.empty()) malformed(repo_id, what + " ('verify' has no 'href')");
    }
    const auto up = actions->find("upload");
    if (up == actions->end()) {
      out.push_back(std::move(b));
      continue;
    }
    if (!up->is_object()) malformed(repo_id, what + " ('upload' is not an object)");
    b.upload = true;
    b.href = string_member(*up, "href", "", repo_id, what);
    if (b.href.empty()) malformed(repo_id, what + " ('upload' has no 'href')");
    const auto header = up->find("header");
    if (header != up->end() && !header->is_null()) {
      if (!header->is_object()) malformed(repo_id, what + " ('header' is not an object)");
      if (const auto chunk = header->find("chunk_size"); chunk != header->end()) {
        // huggingface_hub's server sends the chunk size as a string of digits; a number is accepted too.
        if (chunk->is_number_unsigned()) {
          b.chunk_size = chunk->get<uint64_t>();
        } else if (chunk->is_string()) {
          const std::string digits = chunk->get<std::string>();
          if (digits.empty() || digits.size() > 19 ||
              !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) {
            malformed(repo_id, what + " ('chunk_size' is not a number)");
          }
          b.chunk_size = std::stoull(digits);
        } else {
          malformed(repo_id, what + " ('chunk_size' is not a number)");
        }
        if (b.chunk_size == 0) malformed(repo_id, what + " ('chunk_size' is 0)");
        for (const auto& [key, value] : header->items()) {
          if (key == "chunk_size") continue;
          if (key.empty() || key.size() > 9 ||
              !std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isdigit(c); })) {
            continue;  // other headers of a multipart answer are not part URLs
          }
          if (!value.is_string()) malformed(repo_id, what + " (part " + key + "'s URL is not a string)");
          b.part_urls[std::stoull(key)] = value.get<std::string>();
        }
      } else {
        for (const auto& [key, value] : header->items()) {
          if (value.is_string()) b.headers.emplace_back(key, value.get<std::string>());
        }
      }
    }
    out.push_back(std::move(b));
  }
  return out;
}

CommitResult parse_commit_answer(const std::string& body, const std::string& repo_id) {
  const std::string what = "commit answer";
  const json j = parse_answer(body, repo_id, what);
  CommitResult result;
  result.commit = string_member(j, "commitOid", "", repo_id, what);
  result.commit_url = string_member(j, "commitUrl", "", repo_id, what);
  return result;
}

}  // namespace detail

}  // namespace detrq::hub
