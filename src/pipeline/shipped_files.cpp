// Finds the files detrq ships relative to the running executable, so that an installed detrq works from any
// folder and with the source tree gone (see shipped_files.h).
#include "detrq/pipeline/shipped_files.h"

#include <array>
#include <system_error>

namespace detrq::pipeline {

namespace fs = std::filesystem;

fs::path shipped_data_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  // DETRQ_DATA_FROM_BIN: the install layout's bin -> share/detrq (CMake computes it, normally ../share/detrq);
  // the build tree keeps its executable at BUILD/detrq and the same files under BUILD/share/detrq.
  const std::array<fs::path, 2> candidates = {exe.parent_path() / DETRQ_DATA_FROM_BIN,
                                              exe.parent_path() / "share" / "detrq"};
  for (const fs::path& dir : candidates) {
    if (fs::is_directory(dir, ec)) return dir.lexically_normal();
  }
  return {};
}

fs::path find_shipped_file(const fs::path& relative) {
  const fs::path dir = shipped_data_dir();
  if (dir.empty()) return {};
  std::error_code ec;
  const fs::path path = dir / relative;
  return fs::exists(path, ec) ? path : fs::path();
}

}  // namespace detrq::pipeline
