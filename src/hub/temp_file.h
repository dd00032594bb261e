// A file written under a temporary name (an upload on its way into the store), removed unless released
// or renamed away: hub-server's LFS parts and Xet's xorbs both arrive through one (internal to hub).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <filesystem>

#include "detrq/core/error.h"

namespace detrq::hub {

struct TempFile {
  std::filesystem::path path;
  int fd = -1;
  explicit TempFile(std::filesystem::path p) : path(std::move(p)) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw_io(path.string(), "cannot create a temporary file");
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
  void write(const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw_io(path.string(), "write failed (disk full?)");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  void finish() {
    ::fsync(fd);
    ::close(fd);
    fd = -1;
  }
  void release() { path.clear(); }
};

}  // namespace detrq::hub
