// RF-DETR post-processing: turns the model's `dets` (cxcywh, normalized) and `labels` (logits) into scored,
// named boxes in the source image's pixels, as RF-DETR's reference PostProcess does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "detrq/core/tensor.h"

namespace detrq::vision {

// Where the source image sits inside the model input: input pixel = source pixel * scale + offset.
// A letterbox has scale_x == scale_y and centers the image; a plain resize has offsets 0.
struct InputPlacement {
  double scale_x = 1.0;
  double scale_y = 1.0;
  double offset_x = 0.0;
  double offset_y = 0.0;
  int input_width = 0;    // model input size in pixels (the normalized boxes' unit)
  int input_height = 0;
  int source_width = 0;   // original image size, for clipping
  int source_height = 0;

  // The placement of a source image letterboxed (aspect kept, centered, padded) into an input of this size,
  // with LetterboxTransform's arithmetic: float32 scale min(in_w / w, in_h / h), scaled sizes truncated,
  // offsets (input - scaled) / 2 in integers.
  static InputPlacement letterbox(int source_width, int source_height, int input_width, int input_height);
  // The placement of a source image stretched to the input (RF-DETR's own preprocessing).
  static InputPlacement stretch(int source_width, int source_height, int input_width, int input_height);
};

struct Detection {
  int64_t category_id = 0;  // the labels index, which is the category id (index 0 unused by RF-DETR exports)
  std::string label;        // class name
  float score = 0.0F;       // sigmoid of the logit
  // Box corners in source-image pixels (x0, y0) top-left, (x1, y1) bottom-right.
  float x0 = 0.0F, y0 = 0.0F, x1 = 0.0F, y1 = 0.0F;
};

struct PostprocessOptions {
  int num_select = 300;          // top-k over queries x classes (RF-DETR's num_select)
  float score_threshold = 0.0F;  // drop detections scoring below this after top-k
  bool clip_to_image = true;     // boxes reaching into the letterbox padding are clipped to the image
};

// Class names by category id: from a model's `class_names` metadata (JSON object id -> name) when present,
// COCO's 2017 names (ids 1..90 with gaps) otherwise. Ids without a name read "class_<id>".
class ClassNames {
 public:
  static ClassNames coco();
  // Parses `class_names` metadata; throws kInvalidInput naming `source` when it is not a JSON object of
  // integer-like keys to strings.
  static ClassNames from_json(const std::string& json_text, const std::string& source);
  // `class_names` from model metadata_props when present, COCO otherwise.
  static ClassNames from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source);

  std::string name(int64_t category_id) const;
  const std::map<int64_t, std::string>& names() const noexcept { return names_; }

 private:
  std::map<int64_t, std::string> names_;
};

// Post-processes one image's outputs: `dets` [1, Q, 4] float32 cxcywh normalized to the input size and
// `labels` [1, Q, C] float32 logits. Detections are sorted by score, highest first; ties keep the lower
// query x class index first so that results are deterministic. Throws kInvalidInput on unexpected shapes.
std::vector<Detection> postprocess_rfdetr(const core::Tensor& dets, const core::Tensor& labels,
                                          const InputPlacement& placement, const ClassNames& names,
                                          const PostprocessOptions& options = {});

}  // namespace detrq::vision
