// The server's repositories on disk: content-addressed objects, one JSON file per commit listing every
// file, and branch heads as files replaced atomically, so a crash never leaves a half-made revision.
//   root/<type>s/<org>/<name>/{repo.json, refs/heads/<branch>, commits/<id>.json, objects/<sha256>, tmp/}
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace detrq::hub::detail {

struct RepoKey {
  std::string type;  // "model" or "dataset"
  std::string org;
  std::string name;
  std::string id() const { return org + "/" + name; }
};

struct StoredFile {
  std::string sha256;   // of the content; names the object
  uint64_t size = 0;
  bool lfs = false;
  std::string git_oid;  // git blob sha1 (regular files' etag)
  std::string xet_hash;  // set when the bytes live in the repository's Xet store rather than objects/
};

struct Commit {
  std::string id;
  std::string parent;
  std::string summary;
  std::string description;
  int64_t time = 0;
  std::map<std::string, StoredFile> files;
};

struct CommitOperation {
  enum class Kind { kAddRegular, kAddLfs, kDeleteFile, kDeleteFolder } kind;
  std::string path;
  StoredFile file;  // for additions
};

struct CommitOutcome {
  int status = 200;  // 200, or an HTTP status explaining the refusal
  std::string error_code;  // X-Error-Code value when refused
  std::string message;
  std::string commit;
};

class RepoStore {
 public:
  explicit RepoStore(std::filesystem::path root);

  // Throws HTTP 400-style std::invalid_argument never; returns nullopt for names that fail validation.
  static std::optional<RepoKey> make_key(const std::string& type, const std::string& org, const std::string& name);

  bool exists(const RepoKey& key) const;
  // Creates the repository with an initial commit on main; false when it already exists.
  bool create(const RepoKey& key, bool is_private);
  bool is_private(const RepoKey& key) const;
  // The repositories of a type ("model" or "dataset"), sorted by id.
  std::vector<RepoKey> list(const std::string& type) const;

  // A branch name or a commit id of this repository.
  std::optional<Commit> resolve(const RepoKey& key, const std::string& revision) const;
  bool branch_exists(const RepoKey& key, const std::string& branch) const;

  std::filesystem::path object_path(const RepoKey& key, const std::string& sha256) const;
  std::filesystem::path repo_path(const RepoKey& key) const { return repo_dir(key); }
  bool has_object(const RepoKey& key, const std::string& sha256, uint64_t size) const;
  // A fresh temporary file path inside the repository (same file system as objects/).
  std::filesystem::path temp_path(const RepoKey& key) const;
  std::filesystem::path parts_dir(const RepoKey& key, const std::string& sha256) const;
  // Moves a verified temporary file into objects/<sha256> (the caller has checked hash and size).
  void adopt_object(const RepoKey& key, const std::filesystem::path& temp, const std::string& sha256) const;
  // Stores bytes as an object; returns its description (regular file).
  StoredFile store_bytes(const RepoKey& key, const std::string& bytes) const;

  // Applies the operations on top of `branch`'s head, under the repository's lock. `parent`, when set,
  // must equal the head (else 409). Every LFS addition must name an object already uploaded
  // (or, for a Xet file, a file reconstruction its shard recorded).
  CommitOutcome commit(const RepoKey& key, const std::string& branch, const std::string& summary,
                       const std::string& description, const std::optional<std::string>& parent,
                       const std::vector<CommitOperation>& operations);

 private:
  std::filesystem::path repo_dir(const RepoKey& key) const;
  std::optional<Commit> load_commit(const RepoKey& key, const std::string& id) const;
  std::string write_commit(const RepoKey& key, Commit commit) const;
  std::mutex& repo_mutex(const RepoKey& key);

  std::filesystem::path root_;
  std::mutex map_mutex_;
  std::map<std::string, std::unique_ptr<std::mutex>> repo_mutexes_;
};

}  // namespace detrq::hub::detail
