// The files detrq ships beside its executable (the trained shapes model, its images, the COCO id list, the
// export script), as `cmake --install` lays them out under share/detrq.
#pragma once

#include <filesystem>

namespace detrq::pipeline {

// The folder with detrq's shipped files: <bin>/../share/detrq once installed, <build>/share/detrq in the build
// tree, found from the running executable (never the source tree or the working directory); empty if absent.
std::filesystem::path shipped_data_dir();

// `relative` (models/..., data/..., scripts/...) inside shipped_data_dir(); empty when it is not there.
std::filesystem::path find_shipped_file(const std::filesystem::path& relative);

}  // namespace detrq::pipeline
