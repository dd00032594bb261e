// RF-DETR post-processing: top-k over queries x classes, box conversion and the letterbox undone.
#include "detrq/vision/rfdetr_postprocess.h"

#include <gtest/gtest.h>

#include <cmath>

#include "detrq/core/error.h"

namespace detrq::vision {
namespace {

using core::Tensor;

float logit(float p) { return std::log(p / (1.0F - p)); }

TEST(RfdetrPostprocess, TopKOverQueriesAndClassesWithSigmoidScores) {
  // 3 queries x 4 classes. Query 1 scores high for two classes: both must come out, as in RF-DETR.
  std::vector<float> l(12, logit(0.01F));
  l[1 * 4 + 2] = logit(0.9F);
  l[1 * 4 + 3] = logit(0.7F);
  l[2 * 4 + 1] = logit(0.8F);
  Tensor labels = Tensor::from_vector<float>({1, 3, 4}, l);
  Tensor dets = Tensor::from_vector<float>({1, 3, 4}, {0.5F, 0.5F, 0.2F, 0.2F, 0.25F, 0.25F, 0.5F, 0.5F,
                                                       0.75F, 0.5F, 0.1F, 0.4F});
  auto placement = InputPlacement::stretch(100, 100, 100, 100);
  PostprocessOptions opt;
  opt.num_select = 3;
  auto out = postprocess_rfdetr(dets, labels, placement, ClassNames::coco(), opt);
  ASSERT_EQ(out.size(), 3U);
  EXPECT_EQ(out[0].category_id, 2);
  EXPECT_EQ(out[0].label, "bicycle");
  EXPECT_NEAR(out[0].score, 0.9F, 1e-6);
  EXPECT_NEAR(out[0].x0, 0.0F, 1e-4);
  EXPECT_NEAR(out[0].y0, 0.0F, 1e-4);
  EXPECT_NEAR(out[0].x1, 50.0F, 1e-4);
  EXPECT_NEAR(out[0].y1, 50.0F, 1e-4);
  EXPECT_EQ(out[1].category_id, 1);
  EXPECT_NEAR(out[1].score, 0.8F, 1e-6);
  EXPECT_NEAR(out[1].x0, 70.0F, 1e-4);
  EXPECT_NEAR(out[1].y1, 70.0F, 1e-4);
  EXPECT_EQ(out[2].category_id, 3);
  EXPECT_EQ(out[2].label, "car");
}

TEST(RfdetrPostprocess, ThresholdDropsLowScores) {
  std::vector<float> l(8, logit(0.2F));
  l[5] = logit(0.6F);
  Tensor labels = Tensor::from_vector<float>({1, 2, 4}, l);
  Tensor dets = Tensor::from_vector<float>({1, 2, 4}, {0.5F, 0.5F, 0.1F, 0.1F, 0.5F, 0.5F, 0.1F, 0.1F});
  PostprocessOptions opt;
  opt.score_threshold = 0.5F;
  auto out = postprocess_rfdetr(dets, labels, InputPlacement::stretch(10, 10, 10, 10), ClassNames::coco(), opt);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].category_id, 1);
}

TEST(RfdetrPostprocess, UndoesLetterboxIntoSourcePixels) {
  // A 200x100 image letterboxed into 100x100: scale 0.5, 25 pixels of padding above and below.
  auto p = InputPlacement::letterbox(200, 100, 100, 100);
  EXPECT_DOUBLE_EQ(p.scale_x, 0.5);
  EXPECT_DOUBLE_EQ(p.scale_y, 0.5);
  EXPECT_DOUBLE_EQ(p.offset_x, 0.0);
  EXPECT_DOUBLE_EQ(p.offset_y, 25.0);
  // A box covering input pixels x 10..30, y 35..45 is source pixels x 20..60, y 20..40.
  Tensor dets = Tensor::from_vector<float>({1, 1, 4}, {0.2F, 0.4F, 0.2F, 0.1F});
  Tensor labels = Tensor::from_vector<float>({1, 1, 2}, {-5.0F, 3.0F});
  PostprocessOptions opt;
  opt.num_select = 1;
  auto out = postprocess_rfdetr(dets, labels, p, ClassNames::coco(), opt);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_NEAR(out[0].x0, 20.0F, 1e-3);
  EXPECT_NEAR(out[0].x1, 60.0F, 1e-3);
  EXPECT_NEAR(out[0].y0, 20.0F, 1e-3);
  EXPECT_NEAR(out[0].y1, 40.0F, 1e-3);
}

TEST(RfdetrPostprocess, ClipsBoxesReachingIntoPadding) {
  auto p = InputPlacement::letterbox(200, 100, 100, 100);
  Tensor dets = Tensor::from_vector<float>({1, 1, 4}, {0.5F, 0.5F, 1.0F, 1.0F});
  Tensor labels = Tensor::from_vector<float>({1, 1, 2}, {0.0F, 1.0F});
  PostprocessOptions opt;
  opt.num_select = 1;
  auto clipped = postprocess_rfdetr(dets, labels, p, ClassNames::coco(), opt);
  EXPECT_FLOAT_EQ(clipped[0].y0, 0.0F);
  EXPECT_FLOAT_EQ(clipped[0].y1, 100.0F);
  opt.clip_to_image = false;
  auto raw = postprocess_rfdetr(dets, labels, p, ClassNames::coco(), opt);
  EXPECT_NEAR(raw[0].y0, -50.0F, 1e-3);
  EXPECT_NEAR(raw[0].y1, 150.0F, 1e-3);
}

TEST(RfdetrPostprocess, NamesFromMetadataElseCoco) {
  auto names = ClassNames::from_metadata({{"class_names", R"({"1": "circle", "2": "square"})"}}, "m.onnx");
  EXPECT_EQ(names.name(1), "circle");
  EXPECT_EQ(names.name(2), "square");
  EXPECT_EQ(names.name(7), "class_7");
  auto coco = ClassNames::from_metadata({{"other", "x"}}, "m.onnx");
  EXPECT_EQ(coco.name(1), "person");
  EXPECT_EQ(coco.name(90), "toothbrush");
  EXPECT_EQ(coco.name(12), "class_12");  // an id COCO leaves unused
  EXPECT_EQ(coco.names().size(), 80U);
}

TEST(RfdetrPostprocess, RefusesMalformedInputs) {
  EXPECT_THROW(ClassNames::from_json("[1, 2]", "m.onnx"), Error);
  EXPECT_THROW(ClassNames::from_json("{\"a\": \"b\"}", "m.onnx"), Error);
  EXPECT_THROW(ClassNames::from_json("{\"1\": 3}", "m.onnx"), Error);
  EXPECT_THROW(ClassNames::from_json("{", "m.onnx"), Error);
  Tensor dets = Tensor::zeros(core::DType::kFloat32, {1, 5, 4});
  Tensor bad_labels = Tensor::zeros(core::DType::kFloat32, {1, 4, 3});
  auto p = InputPlacement::stretch(8, 8, 8, 8);
  try {
    postprocess_rfdetr(dets, bad_labels, p, ClassNames::coco());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_EQ(e.where(), "labels");
  }
  EXPECT_THROW(postprocess_rfdetr(Tensor::zeros(core::DType::kFloat32, {1, 5, 3}),
                                  Tensor::zeros(core::DType::kFloat32, {1, 5, 3}), p, ClassNames::coco()),
               Error);
}

}  // namespace
}  // namespace detrq::vision
