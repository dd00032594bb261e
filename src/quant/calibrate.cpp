// calibrate(): statistics, thresholds, outputs, and the INT8-vs-FP32 check, in that order.
#include "detrq/quant/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/log.h"
#include "detrq/quant/fidelity.h"
#include "detrq/quant/label_free_ap.h"
#include "detrq/quant/smoothing.h"
#include "detrq/quant/statistics_observer.h"
#include "detrq/runtime/session.h"

namespace detrq::quant {
namespace {

using Clock = std::chrono::steady_clock;

// INT8 against FP32 on the given tensors: SQNR per output, agreement of top detections on "labels"
// (the class logits of RF-DETR exports, [1, queries, classes]).
FidelityReport compare(runtime::Session& fp32, runtime::Session& int8, const std::string& input_name,
                       const std::vector<core::Tensor>& inputs,
                       std::vector<std::map<std::string, core::Tensor>>* fp32_cache) {
  FidelityReport report;
  std::map<std::string, SqnrAccumulator> acc;
  double agreement = 0.0;
  int agreement_images = 0;
  std::vector<ModelOutputs> tests;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::map<std::string, core::Tensor> feed{{input_name, inputs[i]}};
    if (fp32_cache->size() <= i) fp32_cache->push_back(fp32.run(feed));
    const auto& ref = (*fp32_cache)[i];
    tests.push_back(int8.run(feed));
    const auto& test = tests.back();
    for (const auto& [name, r] : ref) {
      if (r.dtype() != core::DType::kFloat32) continue;
      const core::Tensor& t = test.at(name);
      acc[name].add(r.span<float>(), t.span<float>());
      if (name == "labels" && r.rank() == 3) {
        const double a = top_detection_agreement(r.span<float>(), t.span<float>(), r.dim(1), r.dim(2));
        if (a >= 0) {  // an image whose FP32 logits are all non-finite has no top detection to agree with
          agreement += a;
          ++agreement_images;
        }
      }
    }
  }
  report.images = static_cast<int>(inputs.size());
  for (const auto& [name, a] : acc) report.outputs.push_back({name, a.db()});
  if (agreement_images) report.top_detection_agreement = agreement / agreement_images;
  LabelFreeApOptions ap;
  const core::Shape& shape = inputs.front().shape();
  if (shape.size() == 4) ap.input_size = static_cast<int>(shape[3]);
  const LabelFreeAp estimate = label_free_ap_estimate(
      std::vector<ModelOutputs>(fp32_cache->begin(), fp32_cache->begin() + static_cast<std::ptrdiff_t>(inputs.size())),
      tests, ap);
  report.label_free_ap = estimate.ap;
  report.label_free_ap_standard_error = estimate.standard_error;
  return report;
}

// Forwards every tensor to two observers (one FP32 pass feeds the smoothing and the cache).
class BothObservers : public runtime::Observer {
 public:
  BothObservers(runtime::Observer& a, runtime::Observer& b) : a_(a), b_(b) {}
  void on_tensor(const std::string& name, const core::Tensor& value) override {
    a_.on_tensor(name, value);
    b_.on_tensor(name, value);
  }

 private:
  runtime::Observer& a_;
  runtime::Observer& b_;
};

// Smoothing of the LayerNorm -> MatMul sites: per-channel maxima from FP32 runs on the calibration
// inputs, then the migration, in place. Returns the unsmoothed statistics of the activations it
// changed, which the TensorRT cache (used with the original FP32 model) must keep.
std::map<std::string, TensorStatistics> smooth_model(onnx::Model& model, const CalibrateOptions& opt,
                                                     const runtime::SessionOptions& session_options,
                                                     const onnx::ValueInfo& input, int n_cal,
                                                     CalibrateResult& result, CalibrationTable& table) {
  const auto sites = find_smoothing_sites(model);
  if (sites.empty()) return {};
  std::set<std::string> names;
  for (const auto& s : sites) names.insert(s.activation);
  runtime::SessionOptions options = session_options;
  options.keep_tensors = names;
  runtime::Session session(model, options);
  ChannelMaxObserver channels(names);
  StatisticsObserver statistics(opt.threads > 0 ? opt.threads : core::ThreadPool::hardware_threads());
  statistics.watch_only(names);
  BothObservers both(channels, statistics);
  {
    core::Progress progress("smoothing", n_cal, "images");
    for (int i = 0; i < n_cal; ++i) {
      session.run({{input.name, opt.source.load(static_cast<std::size_t>(i), input.shape)}}, &both);
      progress.advance();
    }
    progress.finish();
  }
  table.smoothing_alpha = opt.smooth_alpha;
  for (const auto& s : apply_smoothing(model, sites, channels.maxima(), opt.smooth_alpha)) {
    table.smoothing.push_back({s.layernorm, s.max_factor, s.min_factor});
  }
  result.smoothed_layernorms = static_cast<int>(table.smoothing.size());
  core::log_info("smoothing: {} LayerNorms, activation channels divided by up to {:.0f}", table.smoothing.size(),
                 table.smoothing.empty() ? 1.0 : std::max_element(table.smoothing.begin(), table.smoothing.end(),
                                                                  [](const auto& a, const auto& b) {
                                                                    return a.max_factor < b.max_factor;
                                                                  })->max_factor);
  return statistics.statistics();
}

// The layers of the Q/DQ model by work, for calibration.json.
std::vector<LayerPrecision> layer_precisions(const MacCount& macs, const std::vector<NodeDecision>& decisions) {
  std::vector<LayerPrecision> out;
  for (std::size_t i = 0; i < macs.nodes.size() && i < decisions.size(); ++i) {
    const auto& n = macs.nodes[i];
    out.push_back({n.node, n.op_type, n.macs, n.int8, n.int8 ? std::string() : decisions[i].reason});
  }
  return out;
}

// What planning folds into constants: a tensor computed from constants alone is computed once at load, so it
// never runs on an image and no observer sees it. RF-DETR's first decoder layer projects its learned queries
// that way. Returns the tensors a step of the (unfused) plan computes at run time.
std::set<std::string> computed_at_run_time(const onnx::Model& model, const runtime::SessionOptions& options) {
  runtime::SessionOptions plan = options;
  plan.fuse_operators = false;
  plan.fuse_qdq = false;
  plan.threads = 1;
  const runtime::Session session(model, plan);
  std::set<std::string> computed;
  for (const auto& in : session.model().graph.inputs) computed.insert(in.name);
  for (const auto& n : session.model().graph.nodes) computed.insert(n.outputs.begin(), n.outputs.end());
  return computed;
}

// A layer computed from constants alone: INT8 would only add error to a value computed once.
constexpr const char* kFoldedReason = "computed from constants only: folded at load, so INT8 would add error and save nothing";

double worst_db(const FidelityReport& r) {
  double worst = std::numeric_limits<double>::infinity();
  for (const auto& o : r.outputs) worst = std::min(worst, o.sqnr_db);
  return worst;
}

}  // namespace

std::vector<std::filesystem::path> list_calibration_tensors(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw_io(dir.string(), "is not a folder", "give the folder written by detrq tensors");
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("calib_", 0) == 0 && e.path().extension() == ".bin") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw_invalid(dir.string(), "holds no calib_*.bin files", "write them with detrq tensors");
  return files;
}

core::Tensor read_calibration_tensor(const std::filesystem::path& path, const core::Shape& shape) {
  auto file = core::MappedFile::open(path);
  const std::size_t expected = static_cast<std::size_t>(core::shape_numel(shape)) * sizeof(float);
  if (file->size() != expected) {
    throw_invalid(path.string(),
                  fmt::format("holds {} bytes; the model input {} float32 needs {}", file->size(),
                              core::shape_to_string(shape), expected),
                  "calibration tensors must be preprocessed for this model's input size");
  }
  core::Tensor t = core::Tensor::empty(core::DType::kFloat32, shape);
  std::memcpy(t.raw_data(), file->data(), expected);
  return t;
}

CalibrationSource tensor_folder_source(const std::filesystem::path& dir) {
  CalibrationSource source;
  source.description = dir.string();
  auto files = std::make_shared<std::vector<std::filesystem::path>>(list_calibration_tensors(dir));
  for (const auto& f : *files) source.names.push_back(f.filename().string());
  source.load = [files](std::size_t i, const core::Shape& shape) { return read_calibration_tensor(files->at(i), shape); };
  return source;
}

namespace {
// The model's one float32 input with its static shape (from a plan, which resolves symbolic sizes).
onnx::ValueInfo single_float_input(const onnx::Model& model, const runtime::SessionOptions& options,
                                   const std::filesystem::path& path) {
  runtime::SessionOptions plan = options;
  plan.fuse_operators = false;
  const runtime::Session session(model, plan);
  if (session.inputs().size() != 1 || session.inputs()[0].dtype != core::DType::kFloat32) {
    throw_unsupported(path.string(), "calibration needs a model with one float32 input");
  }
  return session.inputs()[0];
}

// (calibration inputs, held-out inputs) from --count and --eval-count.
std::pair<int, int> split_inputs(const CalibrateOptions& opt) {
  const CalibrationSource& source = opt.source;
  const int available = static_cast<int>(source.names.size());
  if (available == 0) throw_invalid(source.description, "holds no calibration inputs");
  int n_cal = opt.count;
  int n_eval = std::max(0, opt.eval_count);
  if (n_cal <= 0) {
    n_eval = std::min(n_eval, available / 2);
    n_cal = available - n_eval;
  } else if (n_cal > available) {
    throw Error(ErrorKind::kFailure, source.description,
                fmt::format("holds {} calibration tensors, fewer than --count {}", available, n_cal),
                "write more with detrq tensors or lower --count");
  } else {
    n_eval = std::min(n_eval, available - n_cal);
  }
  return {n_cal, n_eval};
}
}  // namespace

CalibrateResult calibrate(const CalibrateOptions& opt) {
  CalibrateResult result;
  onnx::Model model = onnx::load_model(opt.onnx);
  const std::string fingerprint = model_fingerprint(model);
  runtime::SessionOptions session_options;
  session_options.threads = opt.threads;
  session_options.target = opt.target;
  const onnx::ValueInfo input = single_float_input(model, session_options, opt.onnx);
  const auto [n_cal, n_eval] = split_inputs(opt);

  // 0. Smoothing (before the statistics: it changes the activations they describe).
  const auto start = Clock::now();
  CalibrationTable unsmoothed;
  if (opt.smooth_alpha > 0) {
    const auto stats = smooth_model(model, opt, session_options, input, n_cal, result, result.table);
    unsmoothed = build_calibration_table(stats, opt.method, opt.calibrator);
  }
  // The statistics observer must see every tensor it watches: fusion may not compute them away.
  runtime::SessionOptions fp32_options = session_options;
  if (opt.all_tensors) {
    fp32_options.fuse_operators = false;
  } else {
    fp32_options.keep_tensors = tensors_to_calibrate(model, opt.policy);
  }
  runtime::Session fp32(model, fp32_options);
  const CalibrationSource& source = opt.source;

  // 1. Statistics: FP32 runs with the observer; the input itself is observed too.
  StatisticsObserver observer(opt.threads > 0 ? opt.threads : core::ThreadPool::hardware_threads());
  if (!opt.all_tensors) observer.watch_only(tensors_to_calibrate(model, opt.policy));
  {
    core::Progress progress("calibrating", n_cal, "images");
    for (int i = 0; i < n_cal; ++i) {
      core::Tensor x = source.load(static_cast<std::size_t>(i), input.shape);
      observer.observe(input.name, x.span<float>());
      fp32.run({{input.name, x}}, &observer);
      progress.advance();
    }
    progress.finish();
  }
  // Inputs without a single finite value (all NaN or inf) calibrate nothing: every figure after would be empty.
  if (auto it = observer.statistics().find(input.name); it != observer.statistics().end() && it->second.finite_count() == 0) {
    throw_invalid(source.description, fmt::format("the {} calibration inputs hold no finite value (all NaN or inf)", n_cal),
                  "make the calibration tensors again with detrq tensors");
  }
  result.statistics_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.statistics_bytes = observer.memory_bytes();
  result.calibration_images = n_cal;
  core::log_info("statistics of {} tensors from {} images in {:.1f} s", observer.statistics().size(), n_cal,
                 result.statistics_seconds);

  // 2. Thresholds. The cache describes the original FP32 model: smoothed activations keep their own.
  CalibrationTable table = build_calibration_table(observer.statistics(), opt.method, opt.calibrator);
  table.smoothing_alpha = result.table.smoothing_alpha;
  table.smoothing = std::move(result.table.smoothing);
  result.table = std::move(table);
  result.table.model_fingerprint = fingerprint;
  result.table.images = n_cal;
  if (!opt.cache_path.empty()) {
    CalibrationTable for_cache = result.table;
    // Only the tensors of the table: a smoothed activation no INT8 layer reads gets no scale here either.
    for (const auto& [name, t] : unsmoothed.tensors) {
      if (auto it = for_cache.tensors.find(name); it != for_cache.tensors.end()) it->second = t;
    }
    write_calibration_cache(for_cache.to_cache(opt.cache_version), opt.cache_path);
  }

  // 3. Q/DQ model, and the check on held-out tensors (needed for the budget, the report, the summary).
  std::vector<core::Tensor> held_out;
  for (int i = n_cal; i < n_cal + n_eval; ++i) {
    held_out.push_back(source.load(static_cast<std::size_t>(i), input.shape));
  }
  std::vector<std::map<std::string, core::Tensor>> fp32_outputs;
  const auto macs = node_macs(model, session_options);
  PrecisionPolicy policy = opt.policy;
  const std::set<std::string> computed = computed_at_run_time(model, session_options);
  std::set<std::string> folded_layers;
  for (const auto& n : model.graph.nodes) {
    const bool layer = n.op_type == "Conv" || n.op_type == "MatMul" || n.op_type == "Gemm";
    if (layer && !n.outputs.empty() && !computed.count(n.outputs[0])) folded_layers.insert(n.name);
  }
  for (const auto& name : folded_layers) policy.exclude.push_back(name);
  onnx::Model qdq_model = model;
  result.qdq = insert_qdq(qdq_model, result.table, policy);
  if (!held_out.empty()) {
    runtime::Session int8(qdq_model, session_options);
    result.fidelity = compare(fp32, int8, input.name, held_out, &fp32_outputs);
  }

  // 4. Accuracy budget: measure each quantized layer alone, then return the most sensitive to float
  //    until every output reaches the budget.
  if (opt.accuracy_budget_db && !held_out.empty() && worst_db(result.fidelity) < *opt.accuracy_budget_db) {
    std::vector<std::pair<double, std::string>> sensitivity;  // (SQNR with only this layer in INT8, node)
    std::vector<std::string> quantized;
    for (const auto& d : result.qdq.decisions) {
      if (d.quantize) quantized.push_back(d.node);
    }
    const std::vector<core::Tensor> probe(held_out.begin(), held_out.begin() + 1);
    for (const auto& node : quantized) {
      PrecisionPolicy only = policy;
      only.detr_defaults = false;
      only.include = {node};
      only.exclude = {"*"};
      onnx::Model m = model;
      insert_qdq(m, result.table, only);
      runtime::Session s(m, session_options);
      const double db = worst_db(compare(fp32, s, input.name, probe, &fp32_outputs));
      sensitivity.emplace_back(db, node);
      // The layer's activation inputs carry its sensitivity in the table.
      for (const auto& n : model.graph.nodes) {
        if (n.name != node) continue;
        for (const auto& in : n.inputs) {
          auto it = result.table.tensors.find(in);
          if (it != result.table.tensors.end()) {
            it->second.sensitivity_db = std::min(it->second.sensitivity_db.value_or(db), db);
          }
        }
      }
    }
    std::sort(sensitivity.begin(), sensitivity.end());
    // Return layers in growing batches so the number of full evaluations stays logarithmic.
    std::size_t returned = 0;
    std::size_t batch = 1;
    while (worst_db(result.fidelity) < *opt.accuracy_budget_db && returned < sensitivity.size()) {
      for (std::size_t k = 0; k < batch && returned < sensitivity.size(); ++k, ++returned) {
        policy.exclude.push_back(sensitivity[returned].second);
      }
      batch *= 2;
      qdq_model = model;
      result.qdq = insert_qdq(qdq_model, result.table, policy);
      runtime::Session int8(qdq_model, session_options);
      result.fidelity = compare(fp32, int8, input.name, held_out, &fp32_outputs);
      core::log_info("accuracy budget: {} layers back in float, worst output {:.2f} dB", returned,
                     worst_db(result.fidelity));
    }
    for (auto& d : result.qdq.decisions) {
      for (std::size_t k = 0; k < returned; ++k) {
        if (!d.quantize && sensitivity[k].second == d.node) {
          d.reason = fmt::format("accuracy budget: alone in INT8 it gives {:.2f} dB", sensitivity[k].first);
        }
      }
    }
  }

  // 5. AP budget: the policy's label-free AP loss measured first (above); groups of layers measured
  //    alone and searched only when it is over budget (policy_search.h).
  if (!held_out.empty()) {
    std::map<std::string, FidelityReport> evaluated;  // by policy_key
    const auto policy_key = [](const PrecisionPolicy& p) {
      std::string key;
      for (const auto& i : p.include) key += i + "\n";
      key += "|";
      for (const auto& [n, why] : p.keep_float) key += n + "\n";
      return key;
    };
    const PolicyEvaluator evaluate = [&](const PrecisionPolicy& p) {
      onnx::Model m = model;
      const QdqSummary q = insert_qdq(m, result.table, p);
      runtime::Session s(m, session_options);
      const FidelityReport f = compare(fp32, s, input.name, held_out, &fp32_outputs);
      evaluated[policy_key(p)] = f;
      return PolicyEvaluation{{f.label_free_ap, f.label_free_ap_standard_error}, count_macs(macs, q.decisions).int8_share()};
    };
    const PolicyEvaluation start{{result.fidelity.label_free_ap, result.fidelity.label_free_ap_standard_error},
                                 count_macs(macs, result.qdq.decisions).int8_share()};
    result.policy_search = search_policy(policy, result.qdq.decisions, start, macs, evaluate,
                                         PolicySearchOptions{opt.ap_budget, static_cast<int>(held_out.size())});
    if (result.policy_search.chosen > 0) {
      policy = result.policy_search.chosen_policy(policy);
      qdq_model = model;
      result.qdq = insert_qdq(qdq_model, result.table, policy);
      result.fidelity = evaluated.at(policy_key(policy));
    }
    core::log_info("AP budget: {}", result.policy_search.summary);
  } else {
    result.policy_search.budget = opt.ap_budget;
    result.policy_search.summary = "not measured (no held-out images): the AP budget is not checked";
  }
  result.table.policy_search = result.policy_search;

  // Why a layer is float, where the policy alone does not say it: folded at load as a whole, or reading a
  // tensor folded at load (calibration never sees it, so it has no scale).
  for (auto& d : result.qdq.decisions) {
    if (d.quantize) continue;
    if (folded_layers.count(d.node) && d.reason == "excluded by --exclude " + d.node) {
      d.reason = kFoldedReason;
      continue;
    }
    const std::string prefix = "input '", suffix = "' has no calibration";
    if (d.reason.rfind(prefix, 0) == 0 && d.reason.size() > prefix.size() + suffix.size() &&
        d.reason.compare(d.reason.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string tensor = d.reason.substr(prefix.size(), d.reason.size() - prefix.size() - suffix.size());
      if (!computed.count(tensor)) {
        d.reason = "input '" + tensor + "' is computed from constants at load (folded), so calibration never sees it";
      }
    }
  }

  // What the published Q/DQ model quantizes: the activations its QuantizeLinear nodes read.
  for (auto& [name, t] : result.table.tensors) t.in_qdq_model = false;
  for (const auto& n : qdq_model.graph.nodes) {
    if (n.op_type != "QuantizeLinear" || n.inputs.empty()) continue;
    auto it = result.table.tensors.find(n.inputs[0]);
    if (it != result.table.tensors.end()) it->second.in_qdq_model = true;
  }

  result.macs = count_macs(macs, result.qdq.decisions);
  result.table.layers = layer_precisions(result.macs, result.qdq.decisions);
  core::log_info("{:.1f}% of {:.2f} G multiply-adds in INT8", 100.0 * result.macs.int8_share(), result.macs.total / 1e9);

  if (!opt.qdq_out.empty()) onnx::save_model(qdq_model, opt.qdq_out);
  if (!opt.table_path.empty()) write_calibration_table(result.table, opt.table_path);
  if (!opt.report_path.empty()) {
    CalibrationReportInput report;
    report.model_name = opt.onnx.filename().string();
    report.table = &result.table;
    report.statistics = &observer.statistics();
    report.decisions = result.qdq.decisions;
    report.fidelity = result.fidelity;
    write_calibration_report(report, opt.report_path);
  }
  return result;
}

}  // namespace detrq::quant
