// huggingface_hub's cache layout: folder names, blobs, snapshots and refs, with atomic updates.
#include "detrq/hub/hub_cache.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <random>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::hub {
namespace {

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

bool is_valid_name_part(std::string_view s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s)
    if (!is_name_char(c)) return false;
  if (s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
  if (s.find("..") != std::string_view::npos || s.find("--") != std::string_view::npos) return false;
  return true;
}

std::string temp_suffix() {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  return ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." + std::to_string(rd() % 1000000);
}

}  // namespace

std::string repo_folder_name(std::string_view repo_id, std::string_view repo_type) {
  std::string out = std::string(repo_type) + "s";
  std::string_view rest = repo_id;
  for (;;) {
    const std::size_t slash = rest.find('/');
    out += "--";
    out += rest.substr(0, slash);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return out;
}

bool is_valid_repo_id(std::string_view repo_id) {
  const std::size_t slash = repo_id.find('/');
  if (slash == std::string_view::npos) return is_valid_name_part(repo_id);
  return is_valid_name_part(repo_id.substr(0, slash)) && is_valid_name_part(repo_id.substr(slash + 1));
}

bool is_safe_repo_path(std::string_view path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (char c : path) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool is_commit_hash(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}

HubCache::HubCache(std::filesystem::path cache_dir, std::string repo_id, std::string repo_type) {
  if (!is_valid_repo_id(repo_id)) {
    throw_invalid(repo_id, "not a valid repository id", "use NAME or ORG/NAME with letters, digits, '-', '_', '.'");
  }
  repo_dir_ = cache_dir / repo_folder_name(repo_id, repo_type);
}

std::filesystem::path HubCache::blob_path(std::string_view etag) const {
  // The etag comes from a server: it names a file, so it must be a plain name.
  if (etag.empty() || etag.size() > 128 || !is_safe_repo_path(etag) || etag.find('/') != std::string_view::npos) {
    throw Error(ErrorKind::kNetwork, repo_dir_.string(), "the server sent an unusable etag",
                "is HF_ENDPOINT a Hugging Face Hub?");
  }
  return repo_dir_ / "blobs" / std::string(etag);
}

std::filesystem::path HubCache::incomplete_path(std::string_view etag) const {
  std::filesystem::path p = blob_path(etag);
  p += ".incomplete";
  return p;
}

std::filesystem::path HubCache::snapshot_dir(std::string_view commit) const {
  if (!is_commit_hash(commit)) {
    throw Error(ErrorKind::kNetwork, repo_dir_.string(), "the server sent an invalid commit id",
                "is HF_ENDPOINT a Hugging Face Hub?");
  }
  return repo_dir_ / "snapshots" / std::string(commit);
}

std::filesystem::path HubCache::snapshot_path(std::string_view commit, std::string_view path) const {
  if (!is_safe_repo_path(path)) {
    throw_invalid(std::string(path), "path would land outside the snapshot folder", "refusing it");
  }
  return snapshot_dir(commit) / std::string(path);
}

std::optional<std::string> HubCache::read_ref(std::string_view revision) const {
  if (!is_safe_repo_path(revision)) return std::nullopt;
  std::error_code ec;
  const std::filesystem::path p = repo_dir_ / "refs" / std::string(revision);
  if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
  std::string s = core::read_file(p);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (!is_commit_hash(s)) return std::nullopt;
  return s;
}

void HubCache::write_ref(std::string_view revision, std::string_view commit) const {
  if (!is_safe_repo_path(revision)) throw_invalid(std::string(revision), "not a usable revision name");
  // huggingface_hub writes the bare commit id without a newline.
  core::write_file_atomic(repo_dir_ / "refs" / std::string(revision), commit);
}

std::optional<std::string> HubCache::resolve_offline(std::string_view revision) const {
  if (is_commit_hash(revision)) return std::string(revision);
  return read_ref(revision);
}

void HubCache::link_snapshot(std::string_view commit, std::string_view path, std::string_view etag) const {
  const std::filesystem::path link = snapshot_path(commit, path);
  const std::filesystem::path blob = blob_path(etag);
  std::filesystem::create_directories(link.parent_path());
  const std::filesystem::path target = std::filesystem::relative(blob, link.parent_path());
  std::filesystem::path temp = link;
  temp += temp_suffix();
  std::error_code ec;
  std::filesystem::create_symlink(target, temp, ec);
  if (ec) throw_io(link.string(), "cannot create the snapshot link: " + ec.message());
  if (::rename(temp.c_str(), link.c_str()) != 0) {
    std::filesystem::remove(temp, ec);
    throw_io(link.string(), "cannot move the snapshot link into place");
  }
}

}  // namespace detrq::hub
