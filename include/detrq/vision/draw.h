// Drawing detections (boxes, class names, scores) over an image and saving it as PNG, with cairo.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"
#include "detrq/vision/rfdetr_postprocess.h"

namespace detrq::vision {

// The outline color for a category: a fixed palette indexed by category id, so that a class keeps its
// color across images. Returned as 0xRRGGBB.
uint32_t category_color(int64_t category_id) noexcept;

struct DrawOptions {
  double line_width = 0.0;  // 0: scaled to the image (about 1/250 of its larger side, at least 2 px)
  bool show_scores = true;
};

// Draws `detections` over `image`, a uint8 tensor [H, W, C] with C = 1 (gray), 3 (RGB) or 4 (RGBA), and
// returns the PNG file's bytes. Throws kInvalidInput when the tensor is not such an image.
std::string render_detections_png(const core::Tensor& image, const std::vector<Detection>& detections,
                                  const DrawOptions& options = {});

// The same, written atomically to `path`.
void draw_detections_png(const core::Tensor& image, const std::vector<Detection>& detections,
                         const std::filesystem::path& path, const DrawOptions& options = {});

}  // namespace detrq::vision
