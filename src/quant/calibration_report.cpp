// CalibrationReport: HTML with inline SVG, written atomically.
#include "detrq/quant/calibration_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "detrq/core/file_io.h"

namespace detrq::quant {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string histogram_svg(const TensorStatistics& stats, double amax) {
  constexpr int kBars = 256, kWidth = 640, kHeight = 160;
  const auto counts = stats.histogram.counts();
  const int per_bar = std::max<int>(1, static_cast<int>(counts.size()) / kBars);
  std::vector<double> bars(static_cast<std::size_t>(kBars), 0.0);
  for (std::size_t b = 0; b < counts.size(); ++b) {
    bars[std::min<std::size_t>(b / static_cast<std::size_t>(per_bar), kBars - 1)] += static_cast<double>(counts[b]);
  }
  double top = 0;
  for (double v : bars) top = std::max(top, std::log10(1.0 + v));
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">"
      "<rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>",
      kWidth, kHeight + 20, kWidth, kHeight + 20);
  const double bar_w = static_cast<double>(kWidth) / kBars;
  for (int i = 0; i < kBars; ++i) {
    if (bars[static_cast<std::size_t>(i)] <= 0 || top <= 0) continue;
    const double h = std::log10(1.0 + bars[static_cast<std::size_t>(i)]) / top * kHeight;
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"#4a78b5\"/>",
                       i * bar_w, kHeight - h, bar_w, h);
  }
  const double range = stats.histogram.range();
  if (range > 0) {
    const double x_amax = std::min(1.0, amax / range) * kWidth;
    const double x_max = std::min(1.0, stats.range.max_abs() / range) * kWidth;
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"0\" x2=\"{0:.1f}\" y2=\"{1}\" stroke=\"#d62728\" stroke-width=\"2\"/>",
                       x_amax, kHeight);
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"0\" x2=\"{0:.1f}\" y2=\"{1}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>",
                       x_max, kHeight);
    svg += fmt::format("<text x=\"4\" y=\"{}\" font-size=\"11\" font-family=\"sans-serif\">|x| from 0 to {:.4g} "
                       "(log count); red: amax {:.4g}, dashed: max {:.4g}</text>",
                       kHeight + 15, range, amax, stats.range.max_abs());
  }
  return svg + "</svg>";
}

std::string render_calibration_report(const CalibrationReportInput& in) {
  const CalibrationTable& table = *in.table;
  // One set of counts for the summary, the tables and calibration.json: tensors from the table, layers
  // from its per-layer precisions (the decisions of the published Q/DQ model).
  int with_scale = 0, in_qdq = 0;
  for (const auto& [name, t] : table.tensors) {
    with_scale += t.quantized ? 1 : 0;
    in_qdq += t.quantized && t.in_qdq_model ? 1 : 0;
  }
  const int without_scale = static_cast<int>(table.tensors.size()) - with_scale;
  int int8_layers = 0;
  for (const auto& l : table.layers) int8_layers += l.int8 ? 1 : 0;
  std::string h;
  h += "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>detrq calibration report</title><style>"
       "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:13px}"
       "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#eee}.f{color:#a33}.q{color:#262}"
       "code{font-size:12px}</style></head><body>";
  h += fmt::format("<h1>Calibration report: {}</h1>", escape(in.model_name));
  h += fmt::format("<p>Method <b>{}</b>{}, {} images.</p>", escape(table.method),
                   table.method == "percentile" ? fmt::format(" ({}%)", table.percentile) : "", table.images);
  if (!table.layers.empty()) {
    h += fmt::format("<p id=\"layers\">Layers: <b>{} of {}</b> Conv/MatMul/Gemm run in INT8, {} in float; <b>{:.1f}%</b> of their "
                     "{:.2f} G multiply-adds run in INT8.{}</p>",
                     int8_layers, table.layers.size(), table.layers.size() - static_cast<std::size_t>(int8_layers),
                     100.0 * table.int8_mac_share(), static_cast<double>(table.macs_total()) / 1e9,
                     table.smoothing.empty() ? std::string()
                                             : fmt::format(" {} LayerNorms smoothed (alpha {}).", table.smoothing.size(),
                                                           table.smoothing_alpha));
  }
  h += fmt::format("<p id=\"tensors\">Tensors: {} observed, {} with a scale (all of them in the TensorRT cache), {} quantized "
                   "in the Q/DQ model, {} left without a scale by calibration.</p>",
                   table.tensors.size(), with_scale, in_qdq, without_scale);

  h += "<h2>INT8 against FP32</h2>";
  if (in.fidelity.images == 0) {
    h += "<p>Not measured (no held-out images).</p>";
  } else {
    h += fmt::format("<p>On {} images not used for calibration.</p><table><tr><th>output</th><th>SQNR (dB)</th></tr>",
                     in.fidelity.images);
    for (const auto& o : in.fidelity.outputs) h += fmt::format("<tr><td>{}</td><td>{:.2f}</td></tr>", escape(o.name), o.sqnr_db);
    h += "</table>";
    if (in.fidelity.top_detection_agreement >= 0) {
      h += fmt::format("<p>Top-detection agreement: {:.1f}%</p>", 100.0 * in.fidelity.top_detection_agreement);
    }
    if (in.fidelity.label_free_ap >= 0) {
      h += fmt::format("<p>Label-free AP (INT8 detections against the FP32 detections scoring 0.3 or more): {:.1f}</p>",
                       in.fidelity.label_free_ap);
    }
  }

  if (table.policy_search) h += policy_search_html(*table.policy_search);

  std::map<std::string, int64_t> macs;
  for (const auto& l : table.layers) macs[l.node] = l.macs;
  h += "<h2>Precision decisions</h2><table><tr><th>node</th><th>op</th><th>multiply-adds</th><th>precision</th>"
       "<th>why</th></tr>";
  for (const auto& d : in.decisions) {
    const auto m = macs.find(d.node);
    h += fmt::format("<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                     escape(d.node), escape(d.op_type), m == macs.end() ? std::string("-") : std::to_string(m->second),
                     d.quantize ? "q" : "f", d.quantize ? "INT8" : "float", escape(d.reason));
  }
  h += "</table>";

  h += "<h2>Tensors left without a scale by calibration</h2>";
  if (without_scale == 0) {
    h += "<p>None.</p>";
  } else {
    h += "<table><tr><th>tensor</th><th>why</th></tr>";
    for (const auto& [name, t] : table.tensors) {
      if (!t.quantized) h += fmt::format("<tr><td><code>{}</code></td><td>{}</td></tr>", escape(name), escape(t.reason));
    }
    h += "</table>";
  }

  if (in.statistics) {
    // The most sensitive tensors first when sensitivity was measured, else those whose threshold
    // clips the most of their range.
    std::vector<std::pair<double, std::string>> order;
    for (const auto& [name, t] : table.tensors) {
      if (!t.quantized || !in.statistics->count(name)) continue;
      double key = t.sensitivity_db ? *t.sensitivity_db : -(std::max(std::fabs(t.min), std::fabs(t.max)) / t.amax);
      order.emplace_back(key, name);
    }
    std::sort(order.begin(), order.end());
    h += "<h2>Histograms and thresholds</h2>";
    for (int i = 0; i < std::min<int>(in.max_plots, static_cast<int>(order.size())); ++i) {
      const std::string& name = order[static_cast<std::size_t>(i)].second;
      const TensorCalibration& t = table.tensors.at(name);
      h += fmt::format("<h3><code>{}</code></h3><p>amax {:.5g}, scale {:.5g}, range [{:.5g}, {:.5g}]{}{}</p>", escape(name),
                       t.amax, t.scale, t.min, t.max, t.nonfinite ? fmt::format(", {} non-finite values", t.nonfinite) : "",
                       t.sensitivity_db ? fmt::format(", sensitivity {:.2f} dB", *t.sensitivity_db) : "");
      h += histogram_svg(in.statistics->at(name), t.amax);
    }
  }
  h += "</body></html>\n";
  return h;
}

void write_calibration_report(const CalibrationReportInput& input, const std::filesystem::path& path) {
  core::write_file_atomic(path, render_calibration_report(input));
}

}  // namespace detrq::quant
