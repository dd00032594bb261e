// CalibrationTable: building from statistics, calibration.json, and the TensorRT cache view.
#include "detrq/quant/calibration_table.h"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::quant {

CalibrationTable build_calibration_table(const std::map<std::string, TensorStatistics>& statistics,
                                         CalibrationMethod method, const CalibratorOptions& options) {
  CalibrationTable table;
  table.method = method_name(method);
  if (method == CalibrationMethod::kPercentile) table.percentile = options.percentile;
  for (const auto& [name, s] : statistics) {
    TensorCalibration t;
    t.count = s.count;
    t.nonfinite = s.range.nonfinite;
    if (s.finite_count()) {
      t.min = s.range.min;
      t.max = s.range.max;
    }
    table.images = std::max<int64_t>(table.images, static_cast<int64_t>(s.batches));
    if (s.nonfinite_fraction() > kMaxNonFiniteFraction) {
      t.quantized = false;
      t.reason = fmt::format("{:.1f}% of its values are inf or NaN", 100.0 * s.nonfinite_fraction());
    } else {
      t.amax = compute_amax(s, method, options);
      t.scale = static_cast<float>(t.amax / 127.0);
      if (!(t.amax > 0) || !(t.scale > 0) || !std::isfinite(t.scale)) {
        t.quantized = false;
        t.reason = "no finite non-zero value was seen";
        t.scale = 0.0F;
      }
    }
    table.tensors.emplace(name, std::move(t));
  }
  return table;
}

CalibrationCache CalibrationTable::to_cache(const std::string& version) const {
  CalibrationCache cache;
  cache.version = version;
  cache.algorithm = cache_algorithm_for(method);
  for (const auto& [name, t] : tensors) {
    if (t.quantized) cache.scales[name] = t.scale;
  }
  return cache;
}

std::string model_fingerprint(const onnx::Model& model) {
  // FNV-1a over the graph's interface and node sequence: cheap, stable across saves.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  for (const auto& in : model.graph.inputs) {
    mix(in.name);
    for (int64_t d : in.shape) mix(std::to_string(d));
  }
  for (const auto& node : model.graph.nodes) {
    mix(node.op_type);
    for (const auto& o : node.outputs) mix(o);
  }
  for (const auto& out : model.graph.outputs) mix(out.name);
  return fmt::format("{:016x}", h);
}

int64_t CalibrationTable::macs_total() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.macs;
  return n;
}

int64_t CalibrationTable::macs_int8() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.int8 ? l.macs : 0;
  return n;
}

double CalibrationTable::int8_mac_share() const {
  const int64_t total = macs_total();
  return total > 0 ? static_cast<double>(macs_int8()) / static_cast<double>(total) : 0.0;
}

namespace {
nlohmann::ordered_json layers_json(const CalibrationTable& t) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& l : t.layers) {
    nlohmann::ordered_json e{{"node", l.node}, {"op_type", l.op_type}, {"macs", l.macs}, {"int8", l.int8}};
    if (!l.reason.empty()) e["reason"] = l.reason;
    list.push_back(std::move(e));
  }
  return list;
}

nlohmann::ordered_json smoothing_json(const CalibrationTable& t) {
  nlohmann::ordered_json j{{"alpha", t.smoothing_alpha}};
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& s : t.smoothing) {
    list.push_back({{"layernorm", s.layernorm}, {"max_factor", s.max_factor}, {"min_factor", s.min_factor}});
  }
  j["layernorms"] = std::move(list);
  return j;
}
}  // namespace

std::string CalibrationTable::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = "detrq-calibration";
  j["version"] = 1;
  j["model_fingerprint"] = model_fingerprint;
  j["method"] = method;
  if (method == "percentile") j["percentile"] = percentile;
  j["images"] = images;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& [name, t] : tensors) {
    nlohmann::ordered_json e;
    e["name"] = name;
    e["amax"] = t.amax;
    e["scale"] = static_cast<double>(t.scale);  // exact: every float is a double
    e["min"] = t.min;
    e["max"] = t.max;
    e["count"] = t.count;
    e["nonfinite"] = t.nonfinite;
    e["calibrated"] = t.quantized;
    e["quantized"] = t.quantized && t.in_qdq_model;
    if (!t.quantized) {
      if (!t.reason.empty()) e["reason"] = t.reason;
    } else if (!t.in_qdq_model) {
      e["reason"] = "in the TensorRT cache only: no INT8 layer of the Q/DQ model reads it";
    }
    if (t.sensitivity_db) e["sensitivity_db"] = *t.sensitivity_db;
    list.push_back(std::move(e));
  }
  j["tensors"] = std::move(list);
  if (!layers.empty()) {
    j["macs_total"] = macs_total();
    j["macs_int8"] = macs_int8();
    j["int8_mac_share"] = int8_mac_share();
    j["layers"] = layers_json(*this);
  }
  if (smoothing_alpha > 0) j["smoothing"] = smoothing_json(*this);
  if (policy_search) j["ap_budget"] = policy_search_to_json(*policy_search);
  return j.dump(1) + "\n";
}

CalibrationTable parse_calibration_table(const std::string& json_text, const std::string& source) {
  const std::string hint = "write it again with detrq calibrate --table";
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded()) throw_invalid(source, "not valid JSON", hint);
  // Checked by hand, not with value(): a "format" that is not a string must be this error, not an exception.
  const auto format = j.is_object() ? j.find("format") : j.end();
  if (!j.is_object() || format == j.end() || !format->is_string() || *format != "detrq-calibration") {
    throw_invalid(source, "not a detrq calibration table (no \"format\": \"detrq-calibration\")", hint);
  }
  CalibrationTable table;
  try {
    if (j.at("version").get<int>() != 1) throw_invalid(source, "unsupported table version", hint);
    table.model_fingerprint = j.at("model_fingerprint").get<std::string>();
    table.method = j.at("method").get<std::string>();
    table.percentile = j.value("percentile", 0.0);
    table.images = j.value("images", int64_t{0});
    for (const auto& e : j.at("tensors")) {
      TensorCalibration t;
      const std::string name = e.at("name").get<std::string>();
      t.amax = e.at("amax").get<double>();
      t.scale = static_cast<float>(e.at("scale").get<double>());
      t.min = e.value("min", 0.0);
      t.max = e.value("max", 0.0);
      t.count = e.value("count", uint64_t{0});
      t.nonfinite = e.value("nonfinite", uint64_t{0});
      // "calibrated": has a scale; "quantized": the Q/DQ model quantizes it (tables before "calibrated"
      // existed used "quantized" for the first).
      if (e.contains("calibrated")) {
        t.quantized = e.at("calibrated").get<bool>();
        t.in_qdq_model = e.at("quantized").get<bool>();
      } else {
        t.quantized = e.at("quantized").get<bool>();
      }
      if (!t.quantized) t.reason = e.value("reason", std::string());
      if (e.contains("sensitivity_db") && !e["sensitivity_db"].is_null()) t.sensitivity_db = e["sensitivity_db"].get<double>();
      if (t.quantized && (!(t.scale > 0) || !std::isfinite(t.scale))) {
        throw_invalid(source, "tensor '" + name + "' is quantized with scale " + fmt::format("{}", t.scale), hint);
      }
      if (!table.tensors.emplace(name, std::move(t)).second) throw_invalid(source, "tensor '" + name + "' appears twice", hint);
    }
  } catch (const nlohmann::json::exception& e) {
    throw_invalid(source, std::string("malformed calibration table: ") + e.what(), hint);
  }
  return table;
}

CalibrationTable read_calibration_table(const std::filesystem::path& path) {
  return parse_calibration_table(core::read_file(path), path.string());
}

void write_calibration_table(const CalibrationTable& table, const std::filesystem::path& path) {
  core::write_file_atomic(path, table.to_json());
}

void check_table_matches(const CalibrationTable& table, const onnx::Model& model, const std::string& source) {
  const std::string fp = model_fingerprint(model);
  if (table.model_fingerprint != fp) {
    throw_invalid(source, "the table was made for another model (fingerprint " + table.model_fingerprint +
                              ", this model's is " + fp + ")",
                  "calibrate this model again");
  }
}

}  // namespace detrq::quant
