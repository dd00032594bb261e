// RF-DETR post-processing (see rfdetr_postprocess.h): sigmoid, top-k over queries x classes, cxcywh to
// xyxy, and the input placement undone so that boxes land in the source image's pixels.
#include "detrq/vision/rfdetr_postprocess.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "detrq/core/error.h"

namespace detrq::vision {

namespace {

// COCO 2017 category ids and names: RF-DETR's labels index is the category id, so the 91-wide logits
// leave the unused ids (0, 12, 26, ...) without a name.
constexpr std::pair<int, const char*> kCocoNames[] = {
    {1, "person"},         {2, "bicycle"},      {3, "car"},           {4, "motorcycle"},    {5, "airplane"},
    {6, "bus"},            {7, "train"},        {8, "truck"},         {9, "boat"},          {10, "traffic light"},
    {11, "fire hydrant"},  {13, "stop sign"},   {14, "parking meter"}, {15, "bench"},       {16, "bird"},
    {17, "cat"},           {18, "dog"},         {19, "horse"},        {20, "sheep"},        {21, "cow"},
    {22, "elephant"},      {23, "bear"},        {24, "zebra"},        {25, "giraffe"},      {27, "backpack"},
    {28, "umbrella"},      {31, "handbag"},     {32, "tie"},          {33, "suitcase"},     {34, "frisbee"},
    {35, "skis"},          {36, "snowboard"},   {37, "sports ball"},  {38, "kite"},         {39, "baseball bat"},
    {40, "baseball glove"}, {41, "skateboard"}, {42, "surfboard"},    {43, "tennis racket"}, {44, "bottle"},
    {46, "wine glass"},    {47, "cup"},         {48, "fork"},         {49, "knife"},        {50, "spoon"},
    {51, "bowl"},          {52, "banana"},      {53, "apple"},        {54, "sandwich"},     {55, "orange"},
    {56, "broccoli"},      {57, "carrot"},      {58, "hot dog"},      {59, "pizza"},        {60, "donut"},
    {61, "cake"},          {62, "chair"},       {63, "couch"},        {64, "potted plant"}, {65, "bed"},
    {67, "dining table"},  {70, "toilet"},      {72, "tv"},           {73, "laptop"},       {74, "mouse"},
    {75, "remote"},        {76, "keyboard"},    {77, "cell phone"},   {78, "microwave"},    {79, "oven"},
    {80, "toaster"},       {81, "sink"},        {82, "refrigerator"}, {84, "book"},         {85, "clock"},
    {86, "vase"},          {87, "scissors"},    {88, "teddy bear"},   {89, "hair drier"},   {90, "toothbrush"},
};

float sigmoid(float x) { return 1.0F / (1.0F + std::exp(-x)); }

}  // namespace

InputPlacement InputPlacement::letterbox(int source_width, int source_height, int input_width, int input_height) {
  if (source_width <= 0 || source_height <= 0 || input_width <= 0 || input_height <= 0) {
    throw_invalid("letterbox", "image and input sizes must be positive");
  }
  // The same arithmetic as vision's LetterboxTransform::geometry: a float32 scale, truncated sizes,
  // integer-halved padding. Boxes map back with that one scale.
  const float scale = std::min(static_cast<float>(input_width) / static_cast<float>(source_width),
                               static_cast<float>(input_height) / static_cast<float>(source_height));
  const int scaled_w = static_cast<int>(static_cast<float>(source_width) * scale);
  const int scaled_h = static_cast<int>(static_cast<float>(source_height) * scale);
  InputPlacement p;
  p.scale_x = scale;
  p.scale_y = scale;
  p.offset_x = (input_width - scaled_w) / 2;
  p.offset_y = (input_height - scaled_h) / 2;
  p.input_width = input_width;
  p.input_height = input_height;
  p.source_width = source_width;
  p.source_height = source_height;
  return p;
}

InputPlacement InputPlacement::stretch(int source_width, int source_height, int input_width, int input_height) {
  if (source_width <= 0 || source_height <= 0 || input_width <= 0 || input_height <= 0) {
    throw_invalid("resize", "image and input sizes must be positive");
  }
  InputPlacement p;
  p.scale_x = static_cast<double>(input_width) / source_width;
  p.scale_y = static_cast<double>(input_height) / source_height;
  p.input_width = input_width;
  p.input_height = input_height;
  p.source_width = source_width;
  p.source_height = source_height;
  return p;
}

ClassNames ClassNames::coco() {
  ClassNames names;
  for (const auto& [id, name] : kCocoNames) names.names_[id] = name;
  return names;
}

ClassNames ClassNames::from_json(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw_invalid(source, std::string("class_names is not valid JSON: ") + e.what(),
                  "expected an object such as {\"1\": \"circle\"}");
  }
  if (!j.is_object()) throw_invalid(source, "class_names is not a JSON object", "expected {\"1\": \"circle\", ...}");
  ClassNames names;
  for (const auto& [key, value] : j.items()) {
    int64_t id = 0;
    std::size_t used = 0;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || key.empty()) {
      throw_invalid(source, "class_names key '" + key + "' is not a category id", "keys are integers as strings");
    }
    if (!value.is_string()) throw_invalid(source, "class_names value for id " + key + " is not a string");
    names.names_[id] = value.get<std::string>();
  }
  return names;
}

ClassNames ClassNames::from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source) {
  auto it = metadata.find("class_names");
  if (it == metadata.end()) return coco();
  return from_json(it->second, source);
}

std::string ClassNames::name(int64_t category_id) const {
  auto it = names_.find(category_id);
  return it != names_.end() ? it->second : "class_" + std::to_string(category_id);
}

std::vector<Detection> postprocess_rfdetr(const core::Tensor& dets, const core::Tensor& labels,
                                          const InputPlacement& placement, const ClassNames& names,
                                          const PostprocessOptions& options) {
  if (dets.dtype() != core::DType::kFloat32 || dets.rank() != 3 || dets.dim(0) != 1 || dets.dim(2) != 4) {
    throw_invalid("dets", "expected float32 [1, queries, 4], got " + std::string(core::dtype_name(dets.dtype())) +
                              " " + core::shape_to_string(dets.shape()),
                  "is this an RF-DETR export with outputs dets and labels?");
  }
  if (labels.dtype() != core::DType::kFloat32 || labels.rank() != 3 || labels.dim(0) != 1 ||
      labels.dim(1) != dets.dim(1) || labels.dim(2) < 1) {
    throw_invalid("labels", "expected float32 [1, " + std::to_string(dets.dim(1)) + ", classes], got " +
                                std::string(core::dtype_name(labels.dtype())) + " " +
                                core::shape_to_string(labels.shape()));
  }
  if (placement.input_width <= 0 || placement.input_height <= 0 || placement.scale_x <= 0 || placement.scale_y <= 0) {
    throw_invalid("postprocess", "input placement is not set", "a bug in the caller");
  }
  const int64_t queries = dets.dim(1);
  const int64_t classes = labels.dim(2);
  const float* logits = labels.data<float>();
  const float* boxes = dets.data<float>();

  // Top-k over all queries x classes. Sigmoid is monotonic, so select on logits, then convert.
  const int64_t total = queries * classes;
  const int64_t k = std::clamp<int64_t>(options.num_select, 0, total);
  std::vector<int64_t> order(static_cast<std::size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  auto higher = [logits](int64_t a, int64_t b) {
    // NaN logits sort last so that they never displace real scores.
    const float va = logits[a];
    const float vb = logits[b];
    if (std::isnan(va) != std::isnan(vb)) return std::isnan(vb);
    if (va != vb) return va > vb;
    return a < b;
  };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), higher);

  std::vector<Detection> out;
  out.reserve(static_cast<std::size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    const int64_t flat = order[static_cast<std::size_t>(i)];
    const float logit = logits[flat];
    if (std::isnan(logit)) continue;
    const float score = sigmoid(logit);
    if (score < options.score_threshold) continue;
    const int64_t query = flat / classes;
    const int64_t category = flat % classes;
    const float* b = boxes + query * 4;
    // cxcywh normalized to the input -> input pixels -> source pixels.
    const double cx = b[0] * placement.input_width;
    const double cy = b[1] * placement.input_height;
    const double w = b[2] * placement.input_width;
    const double h = b[3] * placement.input_height;
    double x0 = (cx - 0.5 * w - placement.offset_x) / placement.scale_x;
    double y0 = (cy - 0.5 * h - placement.offset_y) / placement.scale_y;
    double x1 = (cx + 0.5 * w - placement.offset_x) / placement.scale_x;
    double y1 = (cy + 0.5 * h - placement.offset_y) / placement.scale_y;
    if (options.clip_to_image && placement.source_width > 0 && placement.source_height > 0) {
      x0 = std::clamp(x0, 0.0, static_cast<double>(placement.source_width));
      x1 = std::clamp(x1, 0.0, static_cast<double>(placement.source_width));
      y0 = std::clamp(y0, 0.0, static_cast<double>(placement.source_height));
      y1 = std::clamp(y1, 0.0, static_cast<double>(placement.source_height));
    }
    Detection d;
    d.category_id = category;
    d.label = names.name(category);
    d.score = score;
    d.x0 = static_cast<float>(x0);
    d.y0 = static_cast<float>(y0);
    d.x1 = static_cast<float>(x1);
    d.y1 = static_cast<float>(y1);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace detrq::vision
