// RepoStore: atomic, serialized commits over content-addressed objects.
#include "hub/repo_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/hub/hub_cache.h"
#include "hub/digest.h"

namespace detrq::hub::detail {
namespace {

using nlohmann::json;

// An flock on repo/lock: serializes commits across server processes sharing one root.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw_io(path.string(), "cannot open the repository lock");
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw_io(path.string(), "cannot lock the repository");
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string raw;
  for (std::size_t i = 0; i < bytes; ++i) raw.push_back(static_cast<char>(rd() & 0xff));
  return sha256_hex(raw).substr(0, bytes * 2);
}

json file_to_json(const StoredFile& f) {
  json j = {{"sha256", f.sha256}, {"size", f.size}, {"lfs", f.lfs}, {"oid", f.git_oid}};
  if (!f.xet_hash.empty()) j["xet"] = f.xet_hash;
  return j;
}

bool has_xet_file(const std::filesystem::path& repo, const std::string& xet_hash) {
  std::error_code ec;
  return is_hex_string(xet_hash, 64) && std::filesystem::is_regular_file(repo / "xet" / "files" / (xet_hash + ".json"), ec);
}

bool is_branch_name(const std::string& b) {
  if (!is_safe_repo_path(b) || b.size() > 200) return false;
  for (char c : b) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  }
  return true;
}

}  // namespace

RepoStore::RepoStore(std::filesystem::path root) : root_(std::move(root)) {
  std::filesystem::create_directories(root_);
  root_ = std::filesystem::canonical(root_);
}

std::optional<RepoKey> RepoStore::make_key(const std::string& type, const std::string& org, const std::string& name) {
  if (type != "model" && type != "dataset") return std::nullopt;
  if (!is_valid_repo_id(org + "/" + name)) return std::nullopt;
  return RepoKey{type, org, name};
}

std::filesystem::path RepoStore::repo_dir(const RepoKey& key) const {
  // Names were validated by make_key; still refuse anything that resolves outside the root (a link
  // planted in the folder, say).
  const std::filesystem::path dir = root_ / (key.type + "s") / key.org / key.name;
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::weakly_canonical(dir, ec);
  if (ec || real != dir) throw Error(ErrorKind::kInvalidInput, key.id(), "repository folder escapes the root");
  return dir;
}

bool RepoStore::exists(const RepoKey& key) const {
  std::error_code ec;
  return std::filesystem::is_regular_file(repo_dir(key) / "repo.json", ec);
}

bool RepoStore::create(const RepoKey& key, bool is_private) {
  std::lock_guard guard(repo_mutex(key));
  const std::filesystem::path dir = repo_dir(key);
  std::filesystem::create_directories(dir);
  FileLock lock(dir / "lock");
  if (exists(key)) return false;
  // An initial commit on main, as the Hub makes one holding .gitattributes.
  Commit initial;
  initial.summary = "initial commit";
  initial.time = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  initial.files[".gitattributes"] = store_bytes(key, "*.onnx filter=lfs diff=lfs merge=lfs -text\n*.engine filter=lfs diff=lfs merge=lfs -text\n");
  const std::string id = write_commit(key, initial);
  core::write_file_atomic(dir / "refs" / "heads" / "main", id);
  // repo.json last: its presence is what makes the repository exist.
  core::write_file_atomic(dir / "repo.json", json{{"private", is_private}}.dump());
  return true;
}

std::vector<RepoKey> RepoStore::list(const std::string& type) const {
  std::vector<RepoKey> out;
  std::error_code ec;
  const std::filesystem::path dir = root_ / (type + "s");
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& org : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code ec2;
    if (!org.is_directory(ec2) || org.is_symlink(ec2)) continue;
    for (const auto& repo : std::filesystem::directory_iterator(org.path(), ec2)) {
      const auto key = make_key(type, org.path().filename().string(), repo.path().filename().string());
      std::error_code ec3;
      if (key && !repo.is_symlink(ec3) && exists(*key)) out.push_back(*key);
    }
  }
  std::sort(out.begin(), out.end(), [](const RepoKey& a, const RepoKey& b) { return a.id() < b.id(); });
  return out;
}

bool RepoStore::is_private(const RepoKey& key) const {
  try {
    return json::parse(core::read_file(repo_dir(key) / "repo.json")).value("private", false);
  } catch (const std::exception&) {
    return true;  // unreadable metadata: fail closed
  }
}

std::optional<Commit> RepoStore::load_commit(const RepoKey& key, const std::string& id) const {
  if (!is_commit_hash(id)) return std::nullopt;
  const std::filesystem::path p = repo_dir(key) / "commits" / (id + ".json");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
  const json j = json::parse(core::read_file(p));
  Commit c;
  c.id = id;
  c.parent = j.value("parent", "");
  c.summary = j.value("summary", "");
  c.description = j.value("description", "");
  c.time = j.value("time", int64_t{0});
  for (const auto& [path, f] : j.at("files").items()) {
    c.files[path] = StoredFile{f.at("sha256").get<std::string>(), f.at("size").get<uint64_t>(), f.at("lfs").get<bool>(),
                               f.at("oid").get<std::string>(), f.value("xet", "")};
  }
  return c;
}

std::string RepoStore::write_commit(const RepoKey& key, Commit commit) const {
  json files = json::object();
  for (const auto& [path, f] : commit.files) files[path] = file_to_json(f);
  const json j = {{"parent", commit.parent}, {"summary", commit.summary}, {"description", commit.description},
                  {"time", commit.time},     {"nonce", random_hex(8)},    {"files", files}};
  const std::string text = j.dump();
  const std::string id = git_blob_sha1_hex(text);  // 40 hex digits, like a git commit id
  core::write_file_atomic(repo_dir(key) / "commits" / (id + ".json"), text);
  return id;
}

bool RepoStore::branch_exists(const RepoKey& key, const std::string& branch) const {
  std::error_code ec;
  return is_branch_name(branch) && std::filesystem::is_regular_file(repo_dir(key) / "refs" / "heads" / branch, ec);
}

std::optional<Commit> RepoStore::resolve(const RepoKey& key, const std::string& revision) const {
  if (is_commit_hash(revision)) {
    if (auto c = load_commit(key, revision)) return c;
  }
  if (!branch_exists(key, revision)) return std::nullopt;
  return load_commit(key, core::read_file(repo_dir(key) / "refs" / "heads" / revision));
}

std::filesystem::path RepoStore::object_path(const RepoKey& key, const std::string& sha256) const {
  if (!is_hex_string(sha256, 64)) throw Error(ErrorKind::kInvalidInput, key.id(), "malformed object id");
  return repo_dir(key) / "objects" / sha256;
}

bool RepoStore::has_object(const RepoKey& key, const std::string& sha256, uint64_t size) const {
  std::error_code ec;
  const auto p = object_path(key, sha256);
  return std::filesystem::is_regular_file(p, ec) && std::filesystem::file_size(p, ec) == size;
}

std::filesystem::path RepoStore::temp_path(const RepoKey& key) const {
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path dir = repo_dir(key) / "tmp";
  std::filesystem::create_directories(dir);
  return dir / (std::to_string(::getpid()) + "." + std::to_string(counter++) + "." + random_hex(4));
}

std::filesystem::path RepoStore::parts_dir(const RepoKey& key, const std::string& sha256) const {
  if (!is_hex_string(sha256, 64)) throw Error(ErrorKind::kInvalidInput, key.id(), "malformed object id");
  return repo_dir(key) / "parts" / sha256;
}

void RepoStore::adopt_object(const RepoKey& key, const std::filesystem::path& temp, const std::string& sha256) const {
  const std::filesystem::path dest = object_path(key, sha256);
  std::filesystem::create_directories(dest.parent_path());
  if (::rename(temp.c_str(), dest.c_str()) != 0) throw_io(dest.string(), "cannot store the object");
}

StoredFile RepoStore::store_bytes(const RepoKey& key, const std::string& bytes) const {
  StoredFile f{sha256_hex(bytes), bytes.size(), false, git_blob_sha1_hex(bytes), ""};
  if (!has_object(key, f.sha256, f.size)) core::write_file_atomic(object_path(key, f.sha256), bytes);
  return f;
}

std::mutex& RepoStore::repo_mutex(const RepoKey& key) {
  std::lock_guard lock(map_mutex_);
  auto& m = repo_mutexes_[key.type + "/" + key.id()];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

CommitOutcome RepoStore::commit(const RepoKey& key, const std::string& branch, const std::string& summary,
                                const std::string& description, const std::optional<std::string>& parent,
                                const std::vector<CommitOperation>& operations) {
  if (!is_branch_name(branch)) return {400, "RevisionNotFound", "invalid branch name", {}};
  std::lock_guard guard(repo_mutex(key));
  const std::filesystem::path dir = repo_dir(key);
  FileLock lock(dir / "lock");
  if (!branch_exists(key, branch)) {
    return {404, "RevisionNotFound", "branch '" + branch + "' does not exist (commits go to an existing branch)", {}};
  }
  const std::string head = core::read_file(dir / "refs" / "heads" / branch);
  if (parent && *parent != head) {
    return {409, "", "parent commit " + *parent + " is not the head of '" + branch + "' (" + head +
                         "): someone committed in between; fetch and retry",
            {}};
  }
  std::optional<Commit> base = load_commit(key, head);
  if (!base) return {500, "", "branch head is unreadable", {}};
  Commit next;
  next.parent = head;
  next.summary = summary;
  next.description = description;
  next.time = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  next.files = base->files;
  for (const CommitOperation& op : operations) {
    switch (op.kind) {
      case CommitOperation::Kind::kAddRegular:
      case CommitOperation::Kind::kAddLfs:
        if (!has_object(key, op.file.sha256, op.file.size) && !has_xet_file(dir, op.file.xet_hash)) {
          return {422, "", "file '" + op.path + "': its LFS object " + op.file.sha256 + " was not uploaded", {}};
        }
        // A path cannot be both a file and a folder.
        for (const auto& [p, f] : next.files) {
          if (p.rfind(op.path + "/", 0) == 0 || op.path.rfind(p + "/", 0) == 0) {
            if (p != op.path) return {400, "", "'" + op.path + "' clashes with '" + p + "'", {}};
          }
        }
        next.files[op.path] = op.file;
        break;
      case CommitOperation::Kind::kDeleteFile:
        if (!next.files.erase(op.path)) {
          return {404, "EntryNotFound", "A file with this name doesn't exist: " + op.path, {}};
        }
        break;
      case CommitOperation::Kind::kDeleteFolder: {
        const std::string prefix = op.path.back() == '/' ? op.path : op.path + "/";
        std::size_t removed = 0;
        for (auto it = next.files.begin(); it != next.files.end();) {
          if (it->first.rfind(prefix, 0) == 0) {
            it = next.files.erase(it);
            ++removed;
          } else {
            ++it;
          }
        }
        if (removed == 0) return {404, "EntryNotFound", "A folder with this name doesn't exist: " + op.path, {}};
        break;
      }
    }
  }
  const std::string id = write_commit(key, next);
  // The rename of the branch file is the commit point: before it, readers see the old revision.
  core::write_file_atomic(dir / "refs" / "heads" / branch, id);
  return {200, "", "", id};
}

}  // namespace detrq::hub::detail
