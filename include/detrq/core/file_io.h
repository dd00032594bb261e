// File I/O: whole-file reads, memory mapping, and atomic writes (temporary file, flush, rename).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace detrq::core {

// Reads a whole file; throws kIo naming the file when it cannot.
std::string read_file(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically: readers see either the old file or the complete new one.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// A file being written under a temporary name in the destination's folder. commit() flushes, fsyncs
// and renames it into place; destroying it uncommitted removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path destination);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();
  const std::filesystem::path& temp_path() const noexcept { return temp_; }
  const std::filesystem::path& destination() const noexcept { return destination_; }

 private:
  std::filesystem::path destination_;
  std::filesystem::path temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// A read-only memory mapping of a whole file, shared by the tensors that view it.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  const std::filesystem::path& path() const noexcept { return path_; }
  // Drops the resident pages wholly inside [offset, offset + size) (madvise MADV_DONTNEED): what was only
  // read once, as the checksum reads every weight, does not stay in the process's memory; a later read
  // brings a page back from the page cache, with the same bytes (the mapping is private and read-only).
  void release(std::size_t offset, std::size_t size) const noexcept;

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detrq::core
