// Model card rendering (see model_card.h). Plain string building: the card has one shape, and every
// command in it is one a reader can paste. describe_run takes its facts from the run and the model.
#include "detrq/pipeline/model_card.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cctype>

#include "detrq/core/file_io.h"
#include "detrq/onnx/model.h"
#include "detrq/vision/rfdetr_postprocess.h"

namespace detrq::pipeline {

namespace {

std::string human_size(uint64_t bytes) {
  if (bytes >= (1ull << 20)) return fmt::format("{:.1f} MB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= (1ull << 10)) return fmt::format("{:.1f} KB", static_cast<double>(bytes) / (1 << 10));
  return fmt::format("{} B", bytes);
}

// YAML scalars: quote anything that is not plain lower-case text so that the front matter always parses.
std::string yaml_scalar(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) plain = false;
  }
  if (plain) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

std::string metric(double v) { return v < 0 ? "n/a" : fmt::format("{:.4f}", v); }
// INT8 minus FP32, in the unit of the metric columns (as `detrq eval --compare` prints it).
std::string delta(double int8, double fp32) {
  if (int8 < 0 || fp32 < 0) return "n/a";
  return fmt::format("{:+.4f}", int8 - fp32);
}

// Markdown table cells: a '|' would end the cell.
std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

bool has_file(const ModelCardInfo& info, const std::string& name) {
  for (const auto& f : info.files)
    if (f.name == name) return true;
  return false;
}

}  // namespace

std::string render_model_card(const ModelCardInfo& info) {
  std::string md;
  md += "---\n";
  md += "license: " + yaml_scalar(info.license) + "\n";
  md += "library_name: detrq\n";
  md += "pipeline_tag: object-detection\n";
  if (!info.base_model.empty()) md += "base_model: " + yaml_scalar(info.base_model) + "\n";
  md += "tags:\n- object-detection\n- rf-detr\n- detr\n- onnx\n- int8\n- quantization\n- tensorrt\n";
  md += "---\n\n";

  const std::string title = info.title.empty() ? info.repo_id : info.title;
  const std::string queries = info.num_queries > 0 ? std::to_string(info.num_queries) : "Q";
  md += fmt::format("# {}\n\n", title);
  md += fmt::format(
      "RF-DETR prepared for INT8 deployment by detrq {}: the FP32 ONNX export, a TensorRT "
      "calibration cache, an explicitly quantized (Q/DQ) ONNX and the calibration table. Input `{}` is float32 "
      "[1, 3, {}, {}]; outputs are `dets` [1, {}, 4] (cx, cy, w, h normalized to the input) and `labels` "
      "[1, {}, {}] (logits; the index is the category id).\n\n",
      info.detrq_version, info.input_name, info.input_size, info.input_size, queries, queries,
      info.num_classes > 0 ? std::to_string(info.num_classes) : "C");
  if (!info.class_names.empty()) {
    md += "Classes (category id: name, from the model's `class_names` metadata): ";
    for (std::size_t i = 0; i < info.class_names.size(); ++i) {
      md += fmt::format("{}{}: {}", i ? ", " : "", info.class_names[i].first, info.class_names[i].second);
    }
    md += ".\n\n";
  }
  if (!info.calibration_method.empty()) {
    md += fmt::format("Calibrated with the **{}** method on {} images{}.\n\n", info.calibration_method,
                      info.calibration_images,
                      info.calibration_source.empty() ? "" : " of " + info.calibration_source);
  }
  if (info.int8_mac_share) {
    md += fmt::format("The Q/DQ ONNX runs {:.1f}% of the multiply-adds of its Conv/MatMul/Gemm layers in INT8.\n\n",
                      100.0 * *info.int8_mac_share);
  }
  if (info.layers_total > 0) {
    const int int8_layers = info.layers_total - static_cast<int>(info.float_layers.size());
    md += fmt::format("## Precision\n\n{} of the {} Conv/MatMul/Gemm layers run in INT8", int8_layers, info.layers_total);
    if (info.float_layers.empty()) {
      md += "; none is left in float.\n\n";
    } else {
      md += fmt::format("; {} stay in float:\n\n| layer | why it stays in float |\n| --- | --- |\n", info.float_layers.size());
      for (const auto& [node, why] : info.float_layers) md += fmt::format("| `{}` | {} |\n", cell(node), cell(why));
      md += "\n";
    }
    if (has_file(info, "report.html")) {
      md += "Every decision, tensor range and threshold is in the calibration report, [report.html](report.html).\n\n";
    }
  }

  md += "## Files\n\n| file | what | size | sha256 |\n| --- | --- | --- | --- |\n";
  for (const auto& f : info.files) {
    md += fmt::format("| `{}` | {} | {} | `{}` |\n", f.name, f.description, human_size(f.size),
                      f.sha256.size() > 16 ? f.sha256.substr(0, 16) + "…" : f.sha256);
  }
  md += "\n";

  md += "## Accuracy: INT8 against FP32\n\n";
  if (info.accuracy) {
    const auto& a = *info.accuracy;
    md += fmt::format("COCO box metrics (pycocotools' definitions) on {}, both models run by {}.\n\n", a.dataset,
                      a.runtime);
    md += "| metric | FP32 | INT8 (Q/DQ) | change (INT8 - FP32) |\n| --- | --- | --- | --- |\n";
    const auto f = a.fp32.as_array();
    const auto q = a.int8.as_array();
    for (std::size_t i = 0; i < 6; ++i) {
      md += fmt::format("| {} | {} | {} | {} |\n", vision::CocoMetrics::names()[i], metric(f[i]), metric(q[i]),
                        delta(q[i], f[i]));
    }
    md += "\n";
  } else {
    md += "Not measured for this upload (no evaluation set was given to `detrq prepare`).\n\n";
  }

  md += "## Build an engine\n\n### With detrq (CPU, or TensorRT where detrq was built with it)\n\n```sh\n";
  md += fmt::format("detrq build-engine --hf-repo {} --output model.engine\n", info.repo_id);
  md += "detrq detect --engine model.engine image.jpg --output-dir detections/\n```\n\n";
  if (has_file(info, "calibration.cache")) {
    md += "### TensorRT 10: FP32 ONNX with the calibration cache (implicit quantization)\n\n```sh\n";
    md += "trtexec --onnx=inference_model.onnx --int8 --fp16 --calib=calibration.cache --saveEngine=model.engine\n";
    md += "```\n\n";
    if (info.cache_tensors > 0 && info.layers_total > 0) {
      md += fmt::format(
          "The cache holds the scales of {} tensors: the graph input and the inputs and outputs of the {} layers the "
          "Q/DQ ONNX runs in INT8, so TensorRT runs the same layers in INT8; the {} layers listed under Precision have "
          "no scale for their inputs and run in FP16 or FP32.\n\n",
          info.cache_tensors, info.layers_total - static_cast<int>(info.float_layers.size()), info.float_layers.size());
    }
  }
  if (has_file(info, "inference_model.qdq.onnx")) {
    md += "### TensorRT 10 and 11: the Q/DQ ONNX (explicit quantization)\n\n";
    md += "TensorRT 11 no longer calibrates implicitly; the Q/DQ model carries its scales and builds strongly typed:\n\n";
    md += "```sh\ntrtexec --onnx=inference_model.qdq.onnx --stronglyTyped --saveEngine=model.engine\n```\n\n";
    md += "### onnxruntime\n\n```python\nimport numpy as np\nimport onnxruntime as ort\n\n";
    md += "session = ort.InferenceSession(\"inference_model.qdq.onnx\", providers=[\"CPUExecutionProvider\"])\n";
    md += fmt::format("x = np.zeros((1, 3, {0}, {0}), np.float32)  # letterboxed image, see below\n", info.input_size);
    md += fmt::format("dets, labels = session.run([\"dets\", \"labels\"], {{\"{}\": x}})\n```\n\n", info.input_name);
  }
  md += fmt::format(
      "Preprocessing: resize keeping the aspect ratio so the longer side is {0} (bilinear), paste centered on a "
      "{0}x{0} canvas of gray 114, scale to [0, 1], normalize with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, "
      "0.225), CHW. Post-processing: sigmoid of `labels`, top 300 over queries x classes, boxes from cxcywh to "
      "corners, then undo the letterbox.\n",
      info.input_size);
  return md;
}

void describe_run(ModelCardInfo& info, const std::filesystem::path& calibration_table,
                  const std::filesystem::path& onnx_model) {
  const auto table = nlohmann::json::parse(core::read_file(calibration_table));
  info.calibration_images = table.value("images", 0);
  info.layers_total = 0;
  info.float_layers.clear();
  if (table.contains("layers")) {
    for (const auto& l : table.at("layers")) {
      ++info.layers_total;
      if (!l.value("int8", false)) info.float_layers.emplace_back(l.value("node", ""), l.value("reason", ""));
    }
  }
  info.cache_tensors = 0;
  if (table.contains("tensors")) {
    for (const auto& t : table.at("tensors")) info.cache_tensors += t.value("calibrated", false) ? 1 : 0;
  }
  const onnx::Model model = onnx::load_model(onnx_model);
  info.class_names.clear();
  if (model.metadata.count("class_names")) {
    const vision::ClassNames names = vision::ClassNames::from_metadata(model.metadata, onnx_model.string());
    for (const auto& [id, name] : names.names()) {
      info.class_names.emplace_back(id, name);
    }
  }
  for (const auto& in : model.graph.inputs) {
    info.input_name = in.name;
    if (in.shape.size() == 4 && in.shape[2] == in.shape[3] && in.shape[2] > 0) info.input_size = static_cast<int>(in.shape[2]);
  }
  for (const auto& out : model.graph.outputs) {
    if (out.shape.size() != 3) continue;
    if (out.shape[1] > 0) info.num_queries = static_cast<int>(out.shape[1]);
    if (out.name == "labels" && out.shape[2] > 0) info.num_classes = static_cast<int>(out.shape[2]);
  }
}

}  // namespace detrq::pipeline
