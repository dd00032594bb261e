// Calibration tensors: letterboxed images written as raw little-endian float32 1x3xSxS files
// (calib_0000.bin, ...) with a manifest.json naming each tensor's source, sha256, scale and offsets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"

namespace detrq::vision {

struct CalibrationEntry {
  std::string file;           // "calib_0000.bin", relative to the manifest's folder
  std::string source;         // the image's file name
  std::string sha256;         // of the tensor file's bytes
  std::string source_sha256;  // of the image file's bytes (lets a re-run skip unchanged work)
  float scale = 1.0f;
  int offset_x = 0;
  int offset_y = 0;
};

struct CalibrationManifest {
  static constexpr const char* kFileName = "manifest.json";
  int input_width = 512;
  int input_height = 512;
  std::vector<CalibrationEntry> tensors;

  // Reads DIR/manifest.json; throws kIo when absent, kInvalidInput when malformed.
  static CalibrationManifest read(const std::filesystem::path& dir);
  // Writes DIR/manifest.json atomically.
  void write(const std::filesystem::path& dir) const;
};

struct CalibrationTensorsOptions {
  std::filesystem::path input_dir;
  std::filesystem::path output_dir;
  int count = 0;     // 0: every image in input_dir
  int threads = 0;   // 0: one per core
  int input_size = 512;
};

struct CalibrationTensorsSummary {
  int written = 0;   // tensors produced in this run
  int reused = 0;    // tensors already present for the same source, left as they were
  int failed = 0;    // images that could not be decoded (named in `failures`)
  std::vector<std::string> failures;  // "<file>: <reason>"
  int requested = 0;  // --count (0: all)
  int total() const noexcept { return written + reused; }
  // What the issue asks: at least `requested` tensors, or for `requested == 0` at least one.
  bool complete() const noexcept { return requested > 0 ? total() >= requested : total() > 0; }
};

// The images of `dir` that detrq turns into tensors (.jpg, .jpeg, .png in any case), sorted by file name.
std::vector<std::filesystem::path> list_calibration_images(const std::filesystem::path& dir);

// Decodes, letterboxes and writes tensors for the images of options.input_dir in file-name order, skipping
// (and naming on stderr) bad images, using every core; writes manifest.json last. Does not throw for bad
// images; throws for an unreadable input folder or an unwritable output folder.
CalibrationTensorsSummary write_calibration_tensors(const CalibrationTensorsOptions& options);

// Maps one tensor file as a float32 [1, 3, size, size] tensor; throws kInvalidInput when its size is wrong.
// The mapping is read-only: read it, or clone() it before writing.
core::Tensor read_calibration_tensor(const std::filesystem::path& path, int input_size = 512);

// Every tensor the manifest in `dir` lists, in manifest order (mapped, not copied).
std::vector<core::Tensor> read_calibration_tensors(const std::filesystem::path& dir);

// Lowercase hex sha256 of bytes.
std::string sha256_hex(const void* data, std::size_t size);

}  // namespace detrq::vision
