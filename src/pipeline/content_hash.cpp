// SHA-256 hashing of bytes, files and folders (see content_hash.h), over core::Sha256.
#include "detrq/pipeline/content_hash.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/core/sha256.h"

namespace detrq::pipeline {

namespace {

namespace fs = std::filesystem;

int64_t mtime_ns(const fs::path& path) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(fs::last_write_time(path).time_since_epoch()).count();
}

}  // namespace

std::string sha256_hex(std::string_view bytes) { return core::sha256_hex(bytes); }

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_io(path.string(), "cannot open for reading", "does it exist and is it readable?");
  core::Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw_io(path.string(), "read failed");
  return h.hex_digest();
}

std::string ContentHasher::hash_file(const fs::path& path) {
  const std::string key = fs::absolute(path).lexically_normal().string();
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw_io(path.string(), "cannot read: " + ec.message());
  const int64_t mtime = mtime_ns(path);
  auto it = cache_.find(key);
  if (it != cache_.end() && it->second.size == size && it->second.mtime_ns == mtime) return it->second.sha256;
  std::string digest = sha256_file(path);
  cache_[key] = Entry{size, mtime, digest};
  return digest;
}

std::string ContentHasher::hash(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw_io(path.string(), "does not exist");
  if (!fs::is_directory(status)) return hash_file(path);
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  core::Sha256 h;
  for (const auto& f : files) {
    const std::string line = fs::relative(f, path).generic_string() + " " + hash_file(f) + "\n";
    h.update(line.data(), line.size());
  }
  return h.hex_digest();
}

}  // namespace detrq::pipeline
