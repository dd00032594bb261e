// The huggingface_hub cache layout, shared with Python users:
//   <cache>/models--ORG--NAME/{blobs/<etag>, snapshots/<commit>/<path> -> ../../blobs/<etag>, refs/<revision>}
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace detrq::hub {

// "model" (default), "dataset" or "space".
std::string repo_folder_name(std::string_view repo_id, std::string_view repo_type = "model");

// Checks a repository id (NAME or ORG/NAME, [A-Za-z0-9._-], no "..", no leading/trailing "." or "-").
bool is_valid_repo_id(std::string_view repo_id);
// Checks a relative path inside a repository: no empty, ".", ".." or absolute components, no
// backslashes or control characters. Used by the client (paths sent by a server) and the server.
bool is_safe_repo_path(std::string_view path);
// A commit id: 40 lowercase hex digits.
bool is_commit_hash(std::string_view s);

class HubCache {
 public:
  HubCache(std::filesystem::path cache_dir, std::string repo_id, std::string repo_type = "model");

  const std::filesystem::path& repo_dir() const noexcept { return repo_dir_; }
  std::filesystem::path blob_path(std::string_view etag) const;
  std::filesystem::path incomplete_path(std::string_view etag) const;  // blobs/<etag>.incomplete
  std::filesystem::path snapshot_dir(std::string_view commit) const;
  // snapshots/<commit>/<path>; throws kInvalidInput when `path` would leave the snapshot.
  std::filesystem::path snapshot_path(std::string_view commit, std::string_view path) const;

  // refs/<revision> holds the commit a branch or tag pointed to when last resolved.
  std::optional<std::string> read_ref(std::string_view revision) const;
  void write_ref(std::string_view revision, std::string_view commit) const;
  // A commit hash resolves to itself; a branch or tag through refs/.
  std::optional<std::string> resolve_offline(std::string_view revision) const;

  // Makes snapshots/<commit>/<path> a relative symlink to blobs/<etag>, atomically (link then rename).
  void link_snapshot(std::string_view commit, std::string_view path, std::string_view etag) const;

 private:
  std::filesystem::path repo_dir_;
};

}  // namespace detrq::hub
