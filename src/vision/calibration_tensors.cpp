// write_calibration_tensors and its readers: images -> letterboxed float32 tensors + manifest.json,
// in parallel batches, reusing tensors a previous run already wrote for the same source bytes.
#include "detrq/vision/calibration_tensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <map>
#include <optional>
#include <system_error>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"
#include "detrq/core/thread_pool.h"
#include "detrq/vision/image_decoder.h"
#include "detrq/vision/letterbox_transform.h"

namespace detrq::vision {
namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "tensor files are little-endian float32");

namespace {

std::string tensor_file_name(std::size_t index) { return fmt::format("calib_{:04d}.bin", index); }

// One image of a batch on its way to becoming a tensor.
struct Candidate {
  fs::path path;
  std::string source_sha256;
  std::optional<CalibrationEntry> reusable;  // an old entry for the same bytes whose file is intact
  std::vector<float> chw;                    // the new tensor, unless reusable
  LetterboxGeometry geometry;
  std::string error;                         // non-empty: a bad image, skipped
};

}  // namespace

std::vector<fs::path> list_calibration_images(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw_io(dir.string(), "not a folder", "pass a folder of .jpg/.png images");
  std::vector<fs::path> images;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && has_image_extension(entry.path())) images.push_back(entry.path());
  }
  if (ec) throw_io(dir.string(), "cannot list folder: " + ec.message());
  std::sort(images.begin(), images.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
  return images;
}

CalibrationTensorsSummary write_calibration_tensors(const CalibrationTensorsOptions& options) {
  if (options.count < 0) throw_invalid("--count", "must be 0 (all) or positive");
  const auto images = list_calibration_images(options.input_dir);
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) throw_io(options.output_dir.string(), "cannot create folder: " + ec.message());

  // Temporary files of an interrupted run ("calib_0003.bin.tmp.<pid>...") are never valid tensors.
  for (const auto& entry : fs::directory_iterator(options.output_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("calib_") && name.find(".bin.tmp.") != std::string::npos) fs::remove(entry.path(), ec);
  }

  // What a previous run left: source name + source bytes -> its entry.
  std::map<std::pair<std::string, std::string>, CalibrationEntry> previous;
  if (fs::exists(options.output_dir / CalibrationManifest::kFileName)) {
    try {
      const auto old = CalibrationManifest::read(options.output_dir);
      if (old.input_width == options.input_size && old.input_height == options.input_size) {
        for (const auto& e : old.tensors) previous[{e.source, e.source_sha256}] = e;
      }
    } catch (const Error& e) {
      core::log_warn("{}: ignoring the previous manifest: {}", options.output_dir.string(), e.what());
    }
  }

  const LetterboxTransform transform(options.input_size);
  const std::size_t tensor_floats = 3 * static_cast<std::size_t>(options.input_size) * options.input_size;
  const std::size_t tensor_bytes = tensor_floats * sizeof(float);
  core::ThreadPool pool(options.threads);
  CalibrationTensorsSummary summary;
  summary.requested = options.count;
  const std::size_t target = options.count > 0 ? static_cast<std::size_t>(options.count) : images.size();
  CalibrationManifest manifest;
  manifest.input_width = manifest.input_height = options.input_size;
  core::Progress progress("tensors", static_cast<int64_t>(std::min(target, images.size())), "img");

  std::size_t next = 0;
  std::vector<Candidate> batch;
  while (manifest.tensors.size() < target && next < images.size()) {
    // A batch never holds more than the tensors still wanted, so no work is thrown away.
    const std::size_t wanted = target - manifest.tensors.size();
    const std::size_t n = std::min({wanted, images.size() - next, static_cast<std::size_t>(pool.size()) * 2});
    batch.assign(n, Candidate{});
    for (std::size_t i = 0; i < n; ++i) batch[i].path = images[next + i];
    next += n;

    pool.parallel_for(static_cast<int64_t>(n), 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        Candidate& c = batch[static_cast<std::size_t>(i)];
        try {
          const std::string bytes = core::read_file(c.path);
          c.source_sha256 = sha256_hex(bytes.data(), bytes.size());
          const auto it = previous.find({c.path.filename().string(), c.source_sha256});
          if (it != previous.end()) {
            const auto file = options.output_dir / it->second.file;
            std::error_code fec;
            if (fs::file_size(file, fec) == tensor_bytes && !fec) {
              const std::string old = core::read_file(file);
              if (sha256_hex(old.data(), old.size()) == it->second.sha256) c.reusable = it->second;
            }
          }
          // Not decoded when reusable; should the old file sit at another index, it is decoded below.
          if (!c.reusable) {
            const RgbImage image =
                decode_image(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), c.path.string());
            c.chw.resize(tensor_floats);
            c.geometry = transform.apply_into(image, c.chw.data());
          }
        } catch (const Error& e) {
          c.error = e.what();
        } catch (const std::bad_alloc&) {
          c.error = c.path.string() + ": out of memory while decoding";
        }
      }
    });

    // Names follow the order of the images that worked; a reused file must already sit at its index.
    std::vector<std::size_t> to_write;
    for (std::size_t i = 0; i < n; ++i) {
      Candidate& c = batch[i];
      if (!c.error.empty()) {
        core::log_warn("skipped {}", c.error);
        summary.failures.push_back(c.error);
        ++summary.failed;
        progress.advance();
        continue;
      }
      const std::string name = tensor_file_name(manifest.tensors.size());
      if (c.reusable && c.reusable->file == name) {
        manifest.tensors.push_back(*c.reusable);
        ++summary.reused;
        progress.advance();
        continue;
      }
      if (c.reusable) {  // same source, other index: recompute (rare: the folder's images changed)
        try {
          const RgbImage image = decode_image(c.path);
          c.chw.resize(tensor_floats);
          c.geometry = transform.apply_into(image, c.chw.data());
        } catch (const Error& e) {
          core::log_warn("skipped {}", e.what());
          summary.failures.push_back(e.what());
          ++summary.failed;
          progress.advance();
          continue;
        }
      }
      CalibrationEntry e;
      e.file = name;
      e.source = c.path.filename().string();
      e.source_sha256 = c.source_sha256;
      e.scale = c.geometry.scale;
      e.offset_x = c.geometry.offset_x;
      e.offset_y = c.geometry.offset_y;
      to_write.push_back(i);
      manifest.tensors.push_back(std::move(e));
    }
    // Entries to write are the last to_write.size() of the manifest, in the same order.
    const std::size_t base = manifest.tensors.size() - to_write.size();
    pool.parallel_for(static_cast<int64_t>(to_write.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        Candidate& c = batch[to_write[static_cast<std::size_t>(k)]];
        CalibrationEntry& e = manifest.tensors[base + static_cast<std::size_t>(k)];
        core::AtomicFile file(options.output_dir / e.file);
        file.write(c.chw.data(), tensor_bytes);
        file.commit();
        e.sha256 = sha256_hex(c.chw.data(), tensor_bytes);
        progress.advance();
      }
    });
    summary.written += static_cast<int>(to_write.size());
  }
  progress.finish();
  manifest.write(options.output_dir);
  return summary;
}

core::Tensor read_calibration_tensor(const fs::path& path, int input_size) {
  auto mapped = core::MappedFile::open(path);
  const std::size_t expected = 3 * static_cast<std::size_t>(input_size) * input_size * sizeof(float);
  if (mapped->size() != expected) {
    throw_invalid(path.string(),
                  fmt::format("{} bytes, expected {} (float32 1x3x{}x{})", mapped->size(), expected, input_size,
                              input_size),
                  "regenerate it with detrq tensors");
  }
  // The mapping is read-only; the tensor's non-const accessors must not be used to write through it.
  void* data = const_cast<std::byte*>(mapped->data());
  return core::Tensor::view(core::DType::kFloat32, {1, 3, input_size, input_size}, data, mapped);
}

std::vector<core::Tensor> read_calibration_tensors(const fs::path& dir) {
  const auto manifest = CalibrationManifest::read(dir);
  if (manifest.input_width != manifest.input_height) {
    throw_unsupported((dir / CalibrationManifest::kFileName).string(), "non-square input_size");
  }
  std::vector<core::Tensor> tensors;
  tensors.reserve(manifest.tensors.size());
  for (const auto& e : manifest.tensors) tensors.push_back(read_calibration_tensor(dir / e.file, manifest.input_width));
  return tensors;
}

}  // namespace detrq::vision
