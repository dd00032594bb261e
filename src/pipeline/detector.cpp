// Detector (see detector.h): the one place that ties the letterbox, the runtime and RF-DETR's
// post-processing together, so that detect, eval and the accuracy test see exactly the same pipeline.
#include "detrq/pipeline/detector.h"

#include <limits>

#include "detrq/core/error.h"
#include "detrq/engine/cpu/engine_file.h"
#include "detrq/onnx/model.h"
#include "detrq/runtime/session.h"
#include "detrq/vision/letterbox_transform.h"

namespace detrq::pipeline {

struct Detector::Impl {
  runtime::Session session;
  vision::LetterboxTransform letterbox;
  vision::ClassNames names;
  std::string input_name;
  std::string description;
  core::Tensor input;  // reused for every image
  std::shared_ptr<core::MappedFile> mapping;  // keeps an engine's weights alive

  Impl(runtime::Session s, int size) : session(std::move(s)), letterbox(size) {}
};

Detector::Detector() = default;
Detector::~Detector() = default;
Detector::Detector(Detector&&) noexcept = default;
Detector& Detector::operator=(Detector&&) noexcept = default;

Detector Detector::open(const std::filesystem::path& path, const DetectorOptions& options) {
  onnx::Model model;
  std::shared_ptr<core::MappedFile> mapping;
  std::string description;
  std::map<std::string, runtime::PackedState> packed_states;
  if (engine::cpu::is_engine_file(path)) {
    engine::cpu::EngineFile ef = engine::cpu::read_engine_file(path, options.target.names());
    model = std::move(ef.model);
    packed_states = std::move(ef.packed_states);
    mapping = ef.mapping;
    std::string features;
    for (const auto& f : ef.header.target_features) features += (features.empty() ? "" : ", ") + f;
    description = path.string() + " (detrq CPU engine, " + ef.header.precision + ", packed for " +
                  (features.empty() ? "any x86-64 CPU" : features) + ")";
  } else {
    model = onnx::load_model(path);
    description = path.string() + " (ONNX)";
  }
  const std::string source = path.string();
  auto names = vision::ClassNames::from_metadata(model.metadata, source);

  const auto& g = model.graph;
  if (g.inputs.size() != 1) {
    throw_invalid(source, "expected one image input, the model has " + std::to_string(g.inputs.size()),
                  "detrq detects with RF-DETR exports: input [1, 3, S, S], outputs dets and labels");
  }
  const onnx::ValueInfo& in = g.inputs[0];
  if (in.dtype != core::DType::kFloat32 || in.shape.size() != 4 || in.shape[1] != 3 || in.shape[2] <= 0 ||
      in.shape[2] > std::numeric_limits<int>::max() ||
      in.shape[2] != in.shape[3] || (in.shape[0] != 1 && in.shape[0] != -1)) {
    throw_invalid(source, "input '" + in.name + "' is " + core::shape_to_string(in.shape) + ", expected float32 [1, 3, S, S]",
                  "export with a fixed square input, e.g. 512x512");
  }
  bool has_dets = false, has_labels = false;
  for (const auto& o : g.outputs) {
    has_dets |= o.name == "dets";
    has_labels |= o.name == "labels";
  }
  if (!has_dets || !has_labels) {
    throw_invalid(source, "outputs 'dets' and 'labels' not found", "export RF-DETR with scripts/export_onnx.py");
  }
  const int size = static_cast<int>(in.shape[2]);
  const std::string input_name = in.name;

  runtime::SessionOptions so;
  so.threads = options.threads;
  so.target = options.target;
  so.input_shapes[input_name] = {1, 3, size, size};
  Detector d;
  if (mapping) {
    engine::cpu::EngineFile ef;
    ef.model = std::move(model);
    ef.packed_states = std::move(packed_states);
    d.impl_ = std::make_unique<Impl>(engine::cpu::engine_session(std::move(ef), path, so), size);
  } else {
    try {
      d.impl_ = std::make_unique<Impl>(runtime::Session(std::move(model), so), size);
    } catch (const Error& e) {
      throw Error(e.kind(), e.where().empty() ? source : source + ": " + e.where(), e.problem(), e.hint());
    }
  }
  d.impl_->names = std::move(names);
  d.impl_->input_name = input_name;
  d.impl_->description = std::move(description);
  d.impl_->input = core::Tensor::empty(core::DType::kFloat32, {1, 3, size, size});
  d.impl_->mapping = std::move(mapping);
  return d;
}

std::vector<vision::Detection> Detector::detect(const vision::RgbImage& image, const vision::PostprocessOptions& options) {
  Impl& m = *impl_;
  const vision::LetterboxGeometry geo = m.letterbox.apply_into(image, m.input.data<float>());
  auto outputs = m.session.run({{m.input_name, m.input}});
  vision::InputPlacement placement;
  placement.scale_x = geo.scale;
  placement.scale_y = geo.scale;
  placement.offset_x = geo.offset_x;
  placement.offset_y = geo.offset_y;
  placement.input_width = m.letterbox.size();
  placement.input_height = m.letterbox.size();
  placement.source_width = image.width;
  placement.source_height = image.height;
  return vision::postprocess_rfdetr(outputs.at("dets"), outputs.at("labels"), placement, m.names, options);
}

int Detector::input_size() const noexcept { return impl_->letterbox.size(); }
const vision::ClassNames& Detector::class_names() const noexcept { return impl_->names; }
const std::string& Detector::description() const noexcept { return impl_->description; }

}  // namespace detrq::pipeline
