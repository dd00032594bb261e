// COCO box evaluation on small cases whose answers follow from the definitions; the comparison with
// pycocotools itself on a large random case is tests/vision/test_coco_eval_matches_pycocotools.py.
#include "detrq/vision/coco_eval.h"

#include <gtest/gtest.h>

#include "detrq/core/error.h"

namespace detrq::vision {
namespace {

CocoDataset two_images() {
  return CocoDataset::parse(R"({
    "images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 200},
               {"id": 2, "file_name": "b.jpg", "width": 200, "height": 200}],
    "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    "annotations": [
      {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
      {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 100, 100], "area": 10000, "iscrowd": 0},
      {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 0}
    ]})",
                            "two_images.json");
}

TEST(CocoEval, PerfectDetectionsScoreOne) {
  CocoDataset gt = two_images();
  std::vector<CocoDetection> dets;
  for (const auto& a : gt.annotations) dets.push_back({a.image_id, a.category_id, a.bbox, 0.9});
  CocoMetrics m = evaluate_coco_boxes(gt, dets);
  EXPECT_DOUBLE_EQ(m.ap, 1.0);
  EXPECT_DOUBLE_EQ(m.ap50, 1.0);
  EXPECT_DOUBLE_EQ(m.ap75, 1.0);
  EXPECT_DOUBLE_EQ(m.ap_small, 1.0);   // the 20x20 circle
  EXPECT_DOUBLE_EQ(m.ap_medium, 1.0);  // the 50x50 circle
  EXPECT_DOUBLE_EQ(m.ap_large, 1.0);   // the 100x100 square
  EXPECT_DOUBLE_EQ(m.ar100, 1.0);
}

TEST(CocoEval, NoDetectionsScoreZeroAndEmptyRangesMinusOne) {
  CocoDataset gt = two_images();
  CocoMetrics m = evaluate_coco_boxes(gt, {});
  EXPECT_DOUBLE_EQ(m.ap, 0.0);
  EXPECT_DOUBLE_EQ(m.ar100, 0.0);
  gt.annotations.pop_back();  // no medium object left
  gt.annotations.pop_back();  // no large one either
  m = evaluate_coco_boxes(gt, {});
  EXPECT_DOUBLE_EQ(m.ap_medium, -1.0);
  EXPECT_DOUBLE_EQ(m.ap_large, -1.0);
}

TEST(CocoEval, LooseBoxCountsAtFiftyNotAtSeventyFive) {
  CocoDataset gt = CocoDataset::parse(R"({"images": [{"id": 7}], "categories": [{"id": 3, "name": "x"}],
    "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [0, 0, 100, 100], "area": 10000}]})",
                                      "one.json");
  // IoU = 100*60 / (100*100) = 0.6: a hit for thresholds 0.50 and 0.55 and 0.60, a miss above.
  CocoMetrics m = evaluate_coco_boxes(gt, {{7, 3, {0, 0, 100, 60}, 0.8}});
  EXPECT_DOUBLE_EQ(m.ap50, 1.0);
  EXPECT_DOUBLE_EQ(m.ap75, 0.0);
  EXPECT_NEAR(m.ap, 0.3, 1e-12);
}

TEST(CocoEval, FalsePositiveRankedFirstHalvesPrecision) {
  CocoDataset gt = CocoDataset::parse(R"({"images": [{"id": 1}], "categories": [{"id": 1, "name": "x"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000}]})",
                                      "one.json");
  CocoMetrics m = evaluate_coco_boxes(gt, {{1, 1, {300, 300, 50, 50}, 0.9}, {1, 1, {0, 0, 100, 100}, 0.5}});
  EXPECT_NEAR(m.ap, 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(m.ar1, 0.0);   // the one detection kept is the false positive
  EXPECT_DOUBLE_EQ(m.ar10, 1.0);
}

TEST(CocoEval, CrowdRegionsNeitherCountNorPenalize) {
  CocoDataset gt = CocoDataset::parse(R"({"images": [{"id": 1}], "categories": [{"id": 1, "name": "x"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500},
                    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 100, 100, 100], "area": 10000,
                     "iscrowd": 1}]})",
                                      "crowd.json");
  // Two detections inside the crowd region match it (IoU over the detection's own area) and are ignored.
  CocoMetrics m = evaluate_coco_boxes(gt, {{1, 1, {110, 110, 20, 20}, 0.95},
                                           {1, 1, {150, 150, 20, 20}, 0.9},
                                           {1, 1, {0, 0, 50, 50}, 0.5}});
  EXPECT_DOUBLE_EQ(m.ap, 1.0);
}

TEST(CocoEval, RefusesDetectionsOfUnknownImagesAndMalformedFiles) {
  CocoDataset gt = two_images();
  EXPECT_THROW(evaluate_coco_boxes(gt, {{99, 1, {0, 0, 1, 1}, 0.5}}), Error);
  EXPECT_THROW(CocoDataset::parse("{\"images\": 3}", "bad.json"), Error);
  EXPECT_THROW(CocoDataset::parse("[", "bad.json"), Error);
  EXPECT_THROW(parse_coco_detections(R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 1}])", "d.json"),
               Error);
  auto round_trip = parse_coco_detections(coco_detections_to_json({{1, 2, {1.5, 2, 3, 4}, 0.25}}), "d.json");
  ASSERT_EQ(round_trip.size(), 1U);
  EXPECT_EQ(round_trip[0].category_id, 2);
  EXPECT_DOUBLE_EQ(round_trip[0].bbox[0], 1.5);
  EXPECT_DOUBLE_EQ(round_trip[0].score, 0.25);
}

}  // namespace
}  // namespace detrq::vision
