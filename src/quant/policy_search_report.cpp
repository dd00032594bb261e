// report.html's AP-budget section: the search's outcome, an inline SVG bar chart of each group's cost
// alone, and an inline SVG plot of label-free AP against the INT8 share of multiply-adds of every policy
// tried, the chosen one marked. Every plotted value is also in the element's data-* attributes and in a
// table, to the digits calibration.json has them.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "detrq/quant/policy_search.h"

namespace detrq::quant {
namespace {

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

constexpr const char* kFont = "font-family=\"sans-serif\" font-size=\"11\"";

std::string sensitivity_svg(const std::vector<LayerGroup>& groups) {
  constexpr int kLabel = 330, kPlot = 420, kRow = 18, kTop = 22;
  double top = 0.0;
  for (const auto& g : groups) top = std::max(top, g.cost() + g.alone.standard_error);
  if (top <= 0) top = 1.0;
  const int height = kTop + kRow * static_cast<int>(groups.size()) + 24;
  std::string svg = fmt::format(
      "<svg id=\"sensitivity-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\"><rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>"
      "<text x=\"4\" y=\"14\" {2}>label-free AP points lost with only this group in INT8 (bar), +- one standard "
      "error (line)</text>",
      kLabel + kPlot + 70, height, kFont);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const LayerGroup& g = groups[i];
    const int y = kTop + kRow * static_cast<int>(i);
    const double w = g.cost() / top * kPlot;
    const double e0 = std::max(0.0, g.cost() - g.alone.standard_error) / top * kPlot;
    const double e1 = (g.cost() + g.alone.standard_error) / top * kPlot;
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" {}>{}</text>", kLabel - 6, y + 12, kFont, esc(g.name));
    svg += fmt::format("<rect class=\"group-cost\" data-group=\"{}\" data-cost=\"{:.6f}\" data-macs=\"{}\" x=\"{}\" "
                       "y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"#d62728\"/>",
                       esc(g.name), g.cost(), g.macs, kLabel, y + 3, w, kRow - 6);
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{2}\" x2=\"{1:.1f}\" y2=\"{2}\" stroke=\"#333\"/>", kLabel + e0,
                       kLabel + e1, y + kRow / 2);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" {}>{:.2f}</text>", kLabel + std::max(w, e1) + 4, y + 12, kFont,
                       g.cost());
  }
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#555\"/>", kLabel, kTop, height - 20);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" {}>0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" {}>{:.2f} points</text>",
                     kLabel, height - 6, kFont, kLabel + kPlot, height - 6, kFont, top);
  return svg + "</svg>";
}

std::string policies_svg(const PolicySearch& s) {
  constexpr int kLeft = 60, kWidth = 560, kHeight = 300, kTop = 24, kBottom = 40;
  double lo = 100.0 - std::max(s.budget, 0.5);
  for (const auto& t : s.trials) {
    if (t.measured.ap >= 0) lo = std::min(lo, t.measured.ap - t.measured.standard_error);
  }
  lo = std::floor(std::max(0.0, lo));
  const double span = std::max(100.0 - lo, 1e-9);
  const auto x_of = [&](double share) { return kLeft + share * kWidth; };
  const auto y_of = [&](double ap) { return kTop + (100.0 - ap) / span * kHeight; };
  std::string svg = fmt::format(
      "<svg id=\"policy-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">"
      "<rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>"
      "<text x=\"4\" y=\"14\" {2}>label-free AP (points, +- one standard error) against the share of multiply-adds in "
      "INT8; red: the chosen policy; dashed: 100 - budget</text>",
      kLeft + kWidth + 30, kTop + kHeight + kBottom, kFont);
  // Axes, ticks at 0, 25, 50, 75, 100% and at the AP range's ends.
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#555\"/>"
                     "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"#555\"/>",
                     kLeft, kTop, kTop + kHeight, kLeft + kWidth);
  for (int p = 0; p <= 100; p += 25) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" {}>{}%</text>", x_of(p / 100.0),
                       kTop + kHeight + 14, kFont, p);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" {}>multiply-adds in INT8</text>", kLeft + kWidth / 2,
                     kTop + kHeight + 30, kFont);
  svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" {}>100</text><text x=\"{}\" y=\"{:.1f}\" "
                     "text-anchor=\"end\" {}>{:.0f}</text>",
                     kLeft - 4, y_of(100.0) + 4, kFont, kLeft - 4, y_of(lo) + 4, kFont, lo);
  const double line = 100.0 - s.budget;
  if (line >= lo) {
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#888\" stroke-dasharray=\"5 4\"/>",
                       kLeft, y_of(line), kLeft + kWidth);
  }
  for (std::size_t i = 0; i < s.trials.size(); ++i) {
    const PolicyTrial& t = s.trials[i];
    if (t.measured.ap < 0) continue;
    const bool chosen = static_cast<int>(i) == s.chosen;
    const double x = x_of(t.int8_mac_share), y = y_of(t.measured.ap);
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#999\"/>", x,
                       y_of(std::min(100.0, t.measured.ap + t.measured.standard_error)),
                       y_of(std::max(lo, t.measured.ap - t.measured.standard_error)));
    svg += fmt::format("<circle class=\"policy\" data-trial=\"{}\" data-share=\"{:.6f}\" data-ap=\"{:.6f}\" "
                       "data-chosen=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"><title>{}: AP {:.2f}, "
                       "{:.1f}% INT8</title></circle>",
                       i, t.int8_mac_share, t.measured.ap, chosen ? "true" : "false", x, y, chosen ? 7 : 4,
                       chosen ? "#d62728" : (t.within_budget ? "#2ca02c" : "#4a78b5"), esc(t.step), t.measured.ap,
                       100.0 * t.int8_mac_share);
    if (chosen) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" {} fill=\"#d62728\">chosen</text>", x + 9, y - 6, kFont);
    }
  }
  return svg + "</svg>";
}

}  // namespace

std::string policy_search_html(const PolicySearch& s) {
  std::string h = "<h2 id=\"ap-budget\">AP budget and sensitivity by measurement</h2>";
  h += fmt::format("<p>Budget <b>{:.4g}</b> label-free AP points on {} held-out images: {}.</p>", s.budget, s.images,
                   esc(s.summary));
  if (!s.measurable) return h;
  h += "<p>Label-free AP: the INT8 model's detections scored COCO-style against the FP32 model's detections scoring "
       "0.3 or more; the loss is 100 minus it, and a policy is within the budget when its loss minus its standard "
       "error (jackknife over the images) is at most the budget: the measure resolves about one reference box at one "
       "IoU threshold.</p>";
  if (s.searched) {
    h += fmt::format("<h3>Sensitivity: each group alone in INT8</h3><p>{} evaluations, {:.1f} s.</p>", s.evaluations,
                     s.seconds);
    h += sensitivity_svg(s.groups);
    h += "<table><tr><th>group</th><th>nodes</th><th>multiply-adds</th><th>AP lost alone (points)</th><th>+-</th></tr>";
    for (const auto& g : s.groups) {
      h += fmt::format("<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{:.4f}</td><td>{:.4f}</td></tr>", esc(g.name),
                       g.nodes.size(), g.macs, g.cost(), g.alone.standard_error);
    }
    h += "</table>";
  }
  h += "<h3>Policies tried</h3>";
  h += policies_svg(s);
  h += "<table><tr><th>#</th><th>step</th><th>groups in float</th><th>label-free AP</th><th>+-</th><th>INT8 share of "
       "multiply-adds</th><th>within budget</th></tr>";
  for (std::size_t i = 0; i < s.trials.size(); ++i) {
    const PolicyTrial& t = s.trials[i];
    h += fmt::format("<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{:.4f}</td><td>{:.4f}</td><td>{:.2f}%</td><td>{}</td></tr>",
                     static_cast<int>(i) == s.chosen ? " style=\"font-weight:bold\"" : "", i, esc(t.step),
                     t.float_groups.size(), t.measured.ap, t.measured.standard_error, 100.0 * t.int8_mac_share,
                     t.within_budget ? "yes" : "no");
  }
  h += "</table>";
  return h;
}

}  // namespace detrq::quant
