// Atomic writes leave either the old or the new file; mapped files see the bytes written.
#include "detrq/core/file_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "detrq/core/error.h"

namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("detrq_core_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
std::size_t count_entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}
}  // namespace

TEST(AtomicFile, WritesAndReplaces) {
  fs::path dir = fresh_dir("write");
  detrq::core::write_file_atomic(dir / "a.txt", "first");
  EXPECT_EQ(detrq::core::read_file(dir / "a.txt"), "first");
  detrq::core::write_file_atomic(dir / "a.txt", "second");
  EXPECT_EQ(detrq::core::read_file(dir / "a.txt"), "second");
  EXPECT_EQ(count_entries(dir), 1u);
  fs::remove_all(dir);
}

TEST(AtomicFile, UncommittedLeavesOldFileAndNoTemporary) {
  fs::path dir = fresh_dir("abort");
  detrq::core::write_file_atomic(dir / "a.txt", "old");
  {
    detrq::core::AtomicFile f(dir / "a.txt");
    f.write("half of a new");
    EXPECT_TRUE(fs::exists(f.temp_path()));
  }
  EXPECT_EQ(detrq::core::read_file(dir / "a.txt"), "old");
  EXPECT_EQ(count_entries(dir), 1u);
  fs::remove_all(dir);
}

TEST(AtomicFile, CreatesMissingFolders) {
  fs::path dir = fresh_dir("mkdir");
  detrq::core::write_file_atomic(dir / "x" / "y" / "z.bin", std::string(10, '\0'));
  EXPECT_EQ(fs::file_size(dir / "x" / "y" / "z.bin"), 10u);
  fs::remove_all(dir);
}

TEST(ReadFile, MissingFileNamesThePath) {
  try {
    detrq::core::read_file("/nonexistent/detrq/file.onnx");
    FAIL() << "no error";
  } catch (const detrq::Error& e) {
    EXPECT_EQ(e.kind(), detrq::ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/detrq/file.onnx"), std::string::npos);
  }
}

TEST(MappedFile, SeesTheBytes) {
  fs::path dir = fresh_dir("map");
  detrq::core::write_file_atomic(dir / "m.bin", "hello mapped world");
  auto m = detrq::core::MappedFile::open(dir / "m.bin");
  ASSERT_EQ(m->size(), 18u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), m->size()), "hello mapped world");
  fs::remove_all(dir);
}

// release() drops resident pages only: the mapping reads the same bytes afterwards, for a range that is not
// page-aligned, one past the end, and the whole file. (That the pages left the process's memory is the
// engine's peak-memory figure in bench/RESULTS.md; tests do not measure memory.)
TEST(MappedFile, ReleasedPagesReadTheSameBytes) {
  fs::path dir = fresh_dir("release");
  std::string bytes(3 * 65536 + 123, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761U) >> 13);
  detrq::core::write_file_atomic(dir / "r.bin", bytes);
  auto m = detrq::core::MappedFile::open(dir / "r.bin");
  const auto read_all = [&] { return std::string(reinterpret_cast<const char*>(m->data()), m->size()); };
  ASSERT_EQ(read_all(), bytes);
  m->release(100, 70000);
  EXPECT_EQ(read_all(), bytes);
  m->release(m->size() - 10, 1000);
  m->release(m->size() + 5, 10);
  m->release(0, m->size());
  EXPECT_EQ(read_all(), bytes);
  m.reset();
  fs::remove_all(dir);
}
