// manifest.json of a calibration tensor folder: reading (validated) and atomic writing.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <string>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/vision/calibration_tensors.h"

namespace detrq::vision {

CalibrationManifest CalibrationManifest::read(const std::filesystem::path& dir) {
  const auto path = dir / kFileName;
  const std::string text = core::read_file(path);
  CalibrationManifest m;
  try {
    const auto j = nlohmann::json::parse(text);
    const auto& size = j.at("input_size");
    m.input_width = size.at(0).get<int>();
    m.input_height = size.at(1).get<int>();
    for (const auto& t : j.at("tensors")) {
      CalibrationEntry e;
      e.file = t.at("file").get<std::string>();
      e.source = t.at("source").get<std::string>();
      e.sha256 = t.at("sha256").get<std::string>();
      e.source_sha256 = t.value("source_sha256", std::string());
      e.scale = t.at("scale").get<float>();
      e.offset_x = t.at("offset_x").get<int>();
      e.offset_y = t.at("offset_y").get<int>();
      // A manifest names files in its own folder only.
      if (e.file.empty() || e.file.find('/') != std::string::npos || e.file.find('\\') != std::string::npos ||
          e.file == "." || e.file == "..") {
        throw_invalid(path.string(), "tensor file name '" + e.file + "' is not a plain file name",
                      "regenerate the folder with detrq tensors");
      }
      m.tensors.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    throw_invalid(path.string(), std::string("malformed manifest: ") + e.what(),
                  "regenerate the folder with detrq tensors");
  }
  if (m.input_width <= 0 || m.input_height <= 0) {
    throw_invalid(path.string(), "input_size must be positive", "regenerate the folder with detrq tensors");
  }
  return m;
}

void CalibrationManifest::write(const std::filesystem::path& dir) const {
  nlohmann::ordered_json j;
  j["input_size"] = {input_width, input_height};
  auto tensors_json = nlohmann::ordered_json::array();
  for (const auto& e : tensors) {
    nlohmann::ordered_json t;
    t["file"] = e.file;
    t["source"] = e.source;
    t["sha256"] = e.sha256;
    t["source_sha256"] = e.source_sha256;
    // The shortest decimal that reads back as the same float32 (0.64, not 0.6399999856948853).
    t["scale"] = std::stod(fmt::format("{}", e.scale));
    t["offset_x"] = e.offset_x;
    t["offset_y"] = e.offset_y;
    tensors_json.push_back(std::move(t));
  }
  j["tensors"] = std::move(tensors_json);
  core::write_file_atomic(dir / kFileName, j.dump(2) + "\n");
}

}  // namespace detrq::vision
