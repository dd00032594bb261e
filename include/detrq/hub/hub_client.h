// Hugging Face Hub client: downloads into huggingface_hub's cache (resumable, sha256-checked, never
// half-visible), and uploads through preupload, the LFS batch API (basic or multipart) and one ndjson commit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "detrq/hub/hub_config.h"

namespace detrq::hub {

struct UploadItem {
  std::filesystem::path local;
  std::string path_in_repo;
};

struct CommitResult {
  std::string commit;      // the new commit id
  std::string commit_url;
};

struct RepoFileInfo {
  std::string path;
  uint64_t size = 0;
  std::string lfs_sha256;  // empty for regular (git) files
};

struct RepoInfo {
  std::string id;
  std::string sha;  // commit the revision resolved to
  bool is_private = false;
  std::vector<RepoFileInfo> files;
};

// Every call opens its own connection, so one HubClient may be used from several threads at once.
class HubClient {
 public:
  explicit HubClient(HubConfig config = HubConfig::from_environment());

  const HubConfig& config() const noexcept { return config_; }

  // Retries: how many times a transient failure (connection cut, 429, 5xx) is retried, with backoff.
  void set_max_retries(int n) noexcept { max_retries_ = n; }

  // Downloads one file into the cache (or finds it there when offline or already present) and returns
  // snapshots/<commit>/<path>. With `local_dir`, also places a copy at local_dir/<path> and returns that.
  std::filesystem::path download_file(const std::string& repo_id, const std::string& path,
                                       const std::string& revision = "main",
                                       const std::optional<std::filesystem::path>& local_dir = std::nullopt);

  // Downloads `files` (every file of the revision when empty) and returns the snapshot folder
  // (or `local_dir` when given).
  std::filesystem::path snapshot_download(const std::string& repo_id, const std::string& revision = "main",
                                          const std::vector<std::string>& files = {},
                                          const std::optional<std::filesystem::path>& local_dir = std::nullopt);

  RepoInfo repo_info(const std::string& repo_id, const std::string& revision = "main");

  // Creates a model repository; returns false (and does nothing) when it already exists.
  bool create_repo(const std::string& repo_id, bool is_private = false);

  // One commit carrying every item; LFS files go through the batch API first. `parent_commit`, when
  // set, makes the server refuse the commit (409) unless it is the branch head.
  CommitResult upload_files(const std::string& repo_id, const std::vector<UploadItem>& items,
                            const std::string& message, const std::string& revision = "main",
                            const std::optional<std::string>& parent_commit = std::nullopt);

 private:
  HubConfig config_;
  int max_retries_ = 8;
};

}  // namespace detrq::hub
