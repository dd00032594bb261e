// COCO box evaluation (see coco_eval.h). The steps and their quirks follow pycocotools' COCOeval
// (evaluate, evaluateImg, accumulate, summarize) so that the numbers agree to the last digit: stable
// sorts where it uses mergesort, matched ground truth recorded by annotation id, the same IoU formula.
#include "detrq/vision/coco_eval.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::vision {

namespace {

using nlohmann::json;

constexpr int kIouCount = 10;    // 0.50:0.05:0.95
constexpr int kRecallCount = 101;
constexpr std::array<int, 3> kMaxDets = {1, 10, 100};
constexpr int kAreaCount = 4;  // all, small, medium, large
constexpr std::array<std::array<double, 2>, kAreaCount> kAreaRanges = {{
    {0.0, 1e5 * 1e5}, {0.0, 32.0 * 32.0}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e5 * 1e5}}};

// numpy.linspace(start, stop, num): start + i * step, with the last value set to stop exactly.
template <int N>
std::array<double, N> linspace(double start, double stop) {
  std::array<double, N> v{};
  const double step = (stop - start) / (N - 1);
  for (int i = 0; i < N; ++i) v[i] = i * step + start;
  v[N - 1] = stop;
  return v;
}

const std::array<double, kIouCount>& iou_thresholds() {
  // pycocotools: np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1)
  static const auto v = linspace<kIouCount>(0.5, 0.95);
  return v;
}
const std::array<double, kRecallCount>& recall_thresholds() {
  static const auto v = linspace<kRecallCount>(0.0, 1.0);
  return v;
}

double number_field(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) throw_invalid(where, std::string("missing or non-numeric '") + key + "'");
  return it->get<double>();
}
int64_t id_field(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) throw_invalid(where, std::string("missing or non-integer '") + key + "'");
  return it->get<int64_t>();
}
std::array<double, 4> bbox_field(const json& obj, const std::string& where) {
  auto it = obj.find("bbox");
  if (it == obj.end() || !it->is_array() || it->size() != 4) throw_invalid(where, "'bbox' is not [x, y, w, h]");
  std::array<double, 4> b{};
  for (std::size_t i = 0; i < 4; ++i) {
    if (!(*it)[i].is_number()) throw_invalid(where, "'bbox' holds a non-number");
    b[i] = (*it)[i].get<double>();
  }
  return b;
}

json parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw_invalid(source, std::string("not valid JSON: ") + e.what());
  }
}

// maskUtils.iou for boxes (bbIou in pycocotools' maskApi.c): for a crowd region the union is the
// detection's own area.
double box_iou(const std::array<double, 4>& d, const std::array<double, 4>& g, bool crowd) {
  const double w = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
  if (w <= 0) return 0.0;
  const double h = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
  if (h <= 0) return 0.0;
  const double inter = w * h;
  const double da = d[2] * d[3];
  const double ga = g[2] * g[3];
  const double uni = crowd ? da : da + ga - inter;
  return inter / uni;
}

// evaluateImg's result for one image, category and area range (maxDet = 100).
struct ImageEval {
  bool present = false;
  std::vector<double> dt_scores;                 // sorted, highest first
  std::vector<std::array<int64_t, kIouCount>> dt_match;  // matched gt annotation id per threshold, 0 = none
  std::vector<std::array<bool, kIouCount>> dt_ignore;
  std::vector<bool> gt_ignore;
};

}  // namespace

const std::array<const char*, 12>& CocoMetrics::names() {
  static const std::array<const char*, 12> n = {"AP",    "AP50",     "AP75",      "AP_small",  "AP_medium", "AP_large",
                                                "AR1",   "AR10",     "AR100",     "AR_small",  "AR_medium", "AR_large"};
  return n;
}

CocoDataset CocoDataset::parse(const std::string& json_text, const std::string& source) {
  json j = parse_json(json_text, source);
  if (!j.is_object()) throw_invalid(source, "not a COCO annotation object", "expected {\"images\": ..., \"annotations\": ...}");
  CocoDataset ds;
  auto images = j.find("images");
  if (images == j.end() || !images->is_array()) throw_invalid(source, "no 'images' array");
  for (std::size_t i = 0; i < images->size(); ++i) {
    const json& im = (*images)[i];
    const std::string where = source + ": images[" + std::to_string(i) + "]";
    if (!im.is_object()) throw_invalid(where, "not an object");
    CocoImage img;
    img.id = id_field(im, "id", where);
    if (auto f = im.find("file_name"); f != im.end() && f->is_string()) img.file_name = f->get<std::string>();
    if (auto w = im.find("width"); w != im.end() && w->is_number()) img.width = w->get<int>();
    if (auto h = im.find("height"); h != im.end() && h->is_number()) img.height = h->get<int>();
    ds.images.push_back(std::move(img));
  }
  if (auto cats = j.find("categories"); cats != j.end()) {
    if (!cats->is_array()) throw_invalid(source, "'categories' is not an array");
    for (std::size_t i = 0; i < cats->size(); ++i) {
      const json& c = (*cats)[i];
      const std::string where = source + ": categories[" + std::to_string(i) + "]";
      if (!c.is_object()) throw_invalid(where, "not an object");
      std::string name;
      if (auto n = c.find("name"); n != c.end() && n->is_string()) name = n->get<std::string>();
      ds.categories[id_field(c, "id", where)] = name;
    }
  }
  if (auto anns = j.find("annotations"); anns != j.end()) {
    if (!anns->is_array()) throw_invalid(source, "'annotations' is not an array");
    for (std::size_t i = 0; i < anns->size(); ++i) {
      const json& a = (*anns)[i];
      const std::string where = source + ": annotations[" + std::to_string(i) + "]";
      if (!a.is_object()) throw_invalid(where, "not an object");
      CocoAnnotation ann;
      ann.id = id_field(a, "id", where);
      ann.image_id = id_field(a, "image_id", where);
      ann.category_id = id_field(a, "category_id", where);
      ann.bbox = bbox_field(a, where);
      ann.area = a.contains("area") ? number_field(a, "area", where) : ann.bbox[2] * ann.bbox[3];
      if (auto c = a.find("iscrowd"); c != a.end()) {
        if (!c->is_number() && !c->is_boolean()) throw_invalid(where, "'iscrowd' is not 0 or 1");
        ann.iscrowd = c->is_boolean() ? c->get<bool>() : c->get<double>() != 0;
      }
      ds.annotations.push_back(ann);
    }
  }
  return ds;
}

CocoDataset CocoDataset::load(const std::filesystem::path& path) {
  return parse(core::read_file(path), path.string());
}

std::vector<CocoDetection> parse_coco_detections(const std::string& json_text, const std::string& source) {
  json j = parse_json(json_text, source);
  if (!j.is_array()) throw_invalid(source, "not a COCO results array", "expected [{\"image_id\", \"category_id\", \"bbox\", \"score\"}, ...]");
  std::vector<CocoDetection> out;
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& d = j[i];
    const std::string where = source + ": [" + std::to_string(i) + "]";
    if (!d.is_object()) throw_invalid(where, "not an object");
    CocoDetection det;
    det.image_id = id_field(d, "image_id", where);
    det.category_id = id_field(d, "category_id", where);
    det.bbox = bbox_field(d, where);
    det.score = number_field(d, "score", where);
    out.push_back(det);
  }
  return out;
}

std::vector<CocoDetection> load_coco_detections(const std::filesystem::path& path) {
  return parse_coco_detections(core::read_file(path), path.string());
}

std::string coco_detections_to_json(const std::vector<CocoDetection>& detections) {
  json j = json::array();
  for (const auto& d : detections) {
    j.push_back({{"image_id", d.image_id},
                 {"category_id", d.category_id},
                 {"bbox", {d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]}},
                 {"score", d.score}});
  }
  return j.dump();
}

CocoMetrics evaluate_coco_boxes(const CocoDataset& gt, const std::vector<CocoDetection>& detections) {
  // params: sorted unique image and category ids of the ground truth.
  std::vector<int64_t> img_ids;
  for (const auto& im : gt.images) img_ids.push_back(im.id);
  std::sort(img_ids.begin(), img_ids.end());
  img_ids.erase(std::unique(img_ids.begin(), img_ids.end()), img_ids.end());
  std::vector<int64_t> cat_ids;
  for (const auto& [id, name] : gt.categories) cat_ids.push_back(id);  // std::map: already sorted

  std::map<int64_t, std::size_t> img_index;
  for (std::size_t i = 0; i < img_ids.size(); ++i) img_index[img_ids[i]] = i;
  std::map<int64_t, std::size_t> cat_index;
  for (std::size_t k = 0; k < cat_ids.size(); ++k) cat_index[cat_ids[k]] = k;

  // _prepare: ground truth and detections per (image, category), in file order.
  const std::size_t num_img = img_ids.size();
  const std::size_t num_cat = cat_ids.size();
  std::vector<std::vector<const CocoAnnotation*>> gts(num_img * num_cat);
  std::vector<std::vector<const CocoDetection*>> dts(num_img * num_cat);
  for (const auto& a : gt.annotations) {
    auto ii = img_index.find(a.image_id);
    auto kk = cat_index.find(a.category_id);
    if (ii == img_index.end() || kk == cat_index.end()) continue;
    gts[ii->second * num_cat + kk->second].push_back(&a);
  }
  for (const auto& d : detections) {
    auto ii = img_index.find(d.image_id);
    if (ii == img_index.end()) {
      throw_invalid("detections", "image id " + std::to_string(d.image_id) + " is not in the annotations",
                    "evaluate against the annotations of the images the detections came from");
    }
    auto kk = cat_index.find(d.category_id);
    if (kk == cat_index.end()) continue;
    dts[ii->second * num_cat + kk->second].push_back(&d);
  }

  const auto& iou_thr = iou_thresholds();
  const int max_det = kMaxDets.back();

  // evaluate(): evalImgs indexed [category][area][image], as pycocotools lays them out.
  std::vector<ImageEval> evals(num_cat * kAreaCount * num_img);
  for (std::size_t i = 0; i < num_img; ++i) {
    for (std::size_t k = 0; k < num_cat; ++k) {
      const auto& g = gts[i * num_cat + k];
      const auto& d_all = dts[i * num_cat + k];
      if (g.empty() && d_all.empty()) continue;
      // Detections by score, highest first, stable (mergesort), cut at maxDets[-1].
      std::vector<std::size_t> dorder(d_all.size());
      std::iota(dorder.begin(), dorder.end(), 0);
      std::stable_sort(dorder.begin(), dorder.end(),
                       [&](std::size_t a, std::size_t b) { return -d_all[a]->score < -d_all[b]->score; });
      if (dorder.size() > static_cast<std::size_t>(max_det)) dorder.resize(max_det);
      // computeIoU: ious[d][g] over ground truth in file order.
      std::vector<std::vector<double>> ious(dorder.size(), std::vector<double>(g.size()));
      for (std::size_t di = 0; di < dorder.size(); ++di) {
        for (std::size_t gi = 0; gi < g.size(); ++gi) ious[di][gi] = box_iou(d_all[dorder[di]]->bbox, g[gi]->bbox, g[gi]->iscrowd);
      }
      for (int a = 0; a < kAreaCount; ++a) {
        const double lo = kAreaRanges[a][0];
        const double hi = kAreaRanges[a][1];
        std::vector<int> g_ignore(g.size());
        for (std::size_t gi = 0; gi < g.size(); ++gi) {
          g_ignore[gi] = (g[gi]->iscrowd || g[gi]->area < lo || g[gi]->area > hi) ? 1 : 0;
        }
        // Ground truth not ignored first (stable).
        std::vector<std::size_t> gorder(g.size());
        std::iota(gorder.begin(), gorder.end(), 0);
        std::stable_sort(gorder.begin(), gorder.end(), [&](std::size_t x, std::size_t y) { return g_ignore[x] < g_ignore[y]; });

        ImageEval& e = evals[(k * kAreaCount + a) * num_img + i];
        e.present = true;
        const std::size_t nd = dorder.size();
        const std::size_t ng = g.size();
        e.dt_scores.resize(nd);
        e.dt_match.assign(nd, {});
        e.dt_ignore.assign(nd, {});
        e.gt_ignore.resize(ng);
        for (std::size_t gi = 0; gi < ng; ++gi) e.gt_ignore[gi] = g_ignore[gorder[gi]] != 0;
        for (std::size_t di = 0; di < nd; ++di) e.dt_scores[di] = d_all[dorder[di]]->score;
        for (int t = 0; t < kIouCount; ++t) {
          // gtm holds the 1-based detection number that took each ground truth, 0 = free.
          std::vector<int64_t> gtm(ng, 0);
          for (std::size_t di = 0; di < nd; ++di) {
            double iou = std::min(iou_thr[t], 1 - 1e-10);
            long m = -1;
            for (std::size_t gi = 0; gi < ng; ++gi) {
              const bool crowd = g[gorder[gi]]->iscrowd;
              if (gtm[gi] > 0 && !crowd) continue;
              // Past the last wanted ground truth: only ignored ones are left.
              if (m > -1 && !e.gt_ignore[m] && e.gt_ignore[gi]) break;
              if (ious[di][gorder[gi]] < iou) continue;
              iou = ious[di][gorder[gi]];
              m = static_cast<long>(gi);
            }
            if (m == -1) continue;
            e.dt_ignore[di][t] = e.gt_ignore[m];
            // pycocotools records the annotation id; an id of 0 then reads as "unmatched" downstream.
            e.dt_match[di][t] = g[gorder[m]]->id;
            gtm[m] = static_cast<int64_t>(di) + 1;
          }
        }
        // Unmatched detections outside the area range are ignored.
        for (std::size_t di = 0; di < nd; ++di) {
          const auto& b = d_all[dorder[di]]->bbox;
          const double area = b[2] * b[3];
          const bool outside = area < lo || area > hi;
          for (int t = 0; t < kIouCount; ++t) {
            if (e.dt_match[di][t] == 0 && outside) e.dt_ignore[di][t] = true;
          }
        }
      }
    }
  }

  // accumulate(): precision[T][R][K][A][M] and recall[T][K][A][M], -1 where undefined.
  const std::size_t num_m = kMaxDets.size();
  auto pidx = [&](int t, int r, std::size_t k, int a, std::size_t m) {
    return (((static_cast<std::size_t>(t) * kRecallCount + r) * num_cat + k) * kAreaCount + a) * num_m + m;
  };
  auto ridx = [&](int t, std::size_t k, int a, std::size_t m) {
    return ((static_cast<std::size_t>(t) * num_cat + k) * kAreaCount + a) * num_m + m;
  };
  std::vector<double> precision(kIouCount * kRecallCount * num_cat * kAreaCount * num_m, -1.0);
  std::vector<double> recall(kIouCount * num_cat * kAreaCount * num_m, -1.0);
  const auto& rec_thr = recall_thresholds();
  const double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)

  for (std::size_t k = 0; k < num_cat; ++k) {
    for (int a = 0; a < kAreaCount; ++a) {
      for (std::size_t mi = 0; mi < num_m; ++mi) {
        const std::size_t md = static_cast<std::size_t>(kMaxDets[mi]);
        struct Entry {
          double score;
          const ImageEval* e;
          std::size_t d;
        };
        std::vector<Entry> entries;
        std::size_t npig = 0;
        bool any = false;
        for (std::size_t i = 0; i < num_img; ++i) {
          const ImageEval& e = evals[(k * kAreaCount + a) * num_img + i];
          if (!e.present) continue;
          any = true;
          for (std::size_t d = 0; d < std::min(md, e.dt_scores.size()); ++d) entries.push_back({e.dt_scores[d], &e, d});
          for (bool ig : e.gt_ignore) npig += ig ? 0 : 1;
        }
        if (!any || npig == 0) continue;
        std::stable_sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) { return -x.score < -y.score; });
        const std::size_t nd = entries.size();
        for (int t = 0; t < kIouCount; ++t) {
          std::vector<double> rc(nd), pr(nd);
          double tp = 0, fp = 0;
          for (std::size_t j = 0; j < nd; ++j) {
            const bool matched = entries[j].e->dt_match[entries[j].d][t] != 0;
            const bool ignored = entries[j].e->dt_ignore[entries[j].d][t];
            if (matched && !ignored) tp += 1;
            if (!matched && !ignored) fp += 1;
            rc[j] = tp / static_cast<double>(npig);
            pr[j] = tp / (fp + tp + eps);
          }
          recall[ridx(t, k, a, mi)] = nd ? rc[nd - 1] : 0.0;
          for (std::size_t j = nd; j-- > 1;) {
            if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
          }
          for (int r = 0; r < kRecallCount; ++r) {
            // np.searchsorted(rc, thr, side="left"): first j with rc[j] >= thr.
            const std::size_t j = static_cast<std::size_t>(std::lower_bound(rc.begin(), rc.end(), rec_thr[r]) - rc.begin());
            precision[pidx(t, r, k, a, mi)] = j < nd ? pr[j] : 0.0;
          }
        }
      }
    }
  }

  // summarize(): the mean over everything measured (> -1) at one IoU threshold or all of them.
  auto summarize = [&](bool ap, int iou_index, int a, int max_dets) {
    std::size_t mi = 0;
    while (kMaxDets[mi] != max_dets) ++mi;
    double sum = 0;
    std::size_t count = 0;
    for (int t = 0; t < kIouCount; ++t) {
      if (iou_index >= 0 && t != iou_index) continue;
      for (std::size_t k = 0; k < num_cat; ++k) {
        if (ap) {
          for (int r = 0; r < kRecallCount; ++r) {
            const double v = precision[pidx(t, r, k, a, mi)];
            if (v > -1) sum += v, ++count;
          }
        } else {
          const double v = recall[ridx(t, k, a, mi)];
          if (v > -1) sum += v, ++count;
        }
      }
    }
    return count ? sum / static_cast<double>(count) : -1.0;
  };
  CocoMetrics m;
  m.ap = summarize(true, -1, 0, 100);
  m.ap50 = summarize(true, 0, 0, 100);
  m.ap75 = summarize(true, 5, 0, 100);
  m.ap_small = summarize(true, -1, 1, 100);
  m.ap_medium = summarize(true, -1, 2, 100);
  m.ap_large = summarize(true, -1, 3, 100);
  m.ar1 = summarize(false, -1, 0, 1);
  m.ar10 = summarize(false, -1, 0, 10);
  m.ar100 = summarize(false, -1, 0, 100);
  m.ar_small = summarize(false, -1, 1, 100);
  m.ar_medium = summarize(false, -1, 2, 100);
  m.ar_large = summarize(false, -1, 3, 100);
  return m;
}

}  // namespace detrq::vision
