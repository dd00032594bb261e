// SHA-256 of bytes, files and folders, with a cache keyed by size and modification time so that a
// re-run of a pipeline does not read every large model again to learn that nothing changed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace detrq::pipeline {

// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view bytes);
// Hashes a file by streaming it. Throws kIo naming the file.
std::string sha256_file(const std::filesystem::path& path);

class ContentHasher {
 public:
  struct Entry {
    uintmax_t size = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };

  // The hash of a file's contents, or of a folder's (its regular files' relative names and hashes, in
  // name order, recursively). Reuses a cached hash when size and mtime are unchanged.
  std::string hash(const std::filesystem::path& path);

  const std::map<std::string, Entry>& cache() const noexcept { return cache_; }
  void set_cache(std::map<std::string, Entry> cache) { cache_ = std::move(cache); }

 private:
  std::string hash_file(const std::filesystem::path& path);
  std::map<std::string, Entry> cache_;  // by absolute path
};

}  // namespace detrq::pipeline
