// The model card: front matter a Hub accepts, the files, the build commands, and the accuracy table.
#include "detrq/pipeline/model_card.h"

#include <gtest/gtest.h>

namespace detrq::pipeline {
namespace {

ModelCardInfo info() {
  ModelCardInfo i;
  i.repo_id = "acme/rfdetr-shapes-int8";
  i.title = "RF-DETR shapes";
  i.calibration_method = "entropy";
  i.calibration_images = 64;
  i.calibration_source = "data/shapes_calib";
  i.num_classes = 4;
  i.detrq_version = "0.1.0";
  i.files = {{"inference_model.onnx", "FP32", 10u << 20, std::string(64, 'a')},
             {"calibration.cache", "TensorRT cache", 2048, std::string(64, 'b')},
             {"inference_model.qdq.onnx", "Q/DQ", 5u << 20, std::string(64, 'c')}};
  return i;
}

TEST(ModelCard, FrontMatterFilesAndCommands) {
  const std::string md = render_model_card(info());
  ASSERT_EQ(md.rfind("---\nlicense: apache-2.0\n", 0), 0U) << md;
  const auto end = md.find("\n---\n", 4);
  ASSERT_NE(end, std::string::npos);
  const std::string front = md.substr(0, end);
  EXPECT_NE(front.find("pipeline_tag: object-detection"), std::string::npos);
  EXPECT_NE(front.find("tags:\n- object-detection\n"), std::string::npos);
  EXPECT_NE(md.find("| `inference_model.onnx` | FP32 | 10.0 MB |"), std::string::npos) << md;
  EXPECT_NE(md.find("detrq build-engine --hf-repo acme/rfdetr-shapes-int8 --output model.engine"), std::string::npos);
  EXPECT_NE(md.find("trtexec --onnx=inference_model.onnx --int8 --fp16 --calib=calibration.cache"), std::string::npos);
  EXPECT_NE(md.find("trtexec --onnx=inference_model.qdq.onnx --stronglyTyped"), std::string::npos);
  EXPECT_NE(md.find("ort.InferenceSession(\"inference_model.qdq.onnx\""), std::string::npos);
  EXPECT_NE(md.find("Not measured"), std::string::npos);
}

TEST(ModelCard, StatesTheShareOfMultiplyAddsInInt8WhenKnown) {
  ModelCardInfo i = info();
  EXPECT_EQ(render_model_card(i).find("multiply-adds"), std::string::npos);
  i.int8_mac_share = 0.98423;
  EXPECT_NE(render_model_card(i).find("runs 98.4% of the multiply-adds of its Conv/MatMul/Gemm layers in INT8"),
            std::string::npos);
}

TEST(ModelCard, AccuracyTableChangeIsInt8MinusFp32InTheMetricsUnit) {
  ModelCardInfo i = info();
  AccuracyFigures a;
  a.dataset = "data/shapes_val (200 images)";
  a.runtime = "detrq CPU runtime";
  a.fp32.ap = 0.80;
  a.fp32.ap50 = 0.95;
  a.int8.ap = 0.7925;
  a.int8.ap50 = 0.951;
  i.accuracy = a;
  const std::string md = render_model_card(i);
  // One convention with `detrq eval --compare`: INT8 minus FP32, in the columns' own unit, said in the header.
  EXPECT_NE(md.find("| metric | FP32 | INT8 (Q/DQ) | change (INT8 - FP32) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| AP | 0.8000 | 0.7925 | -0.0075 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| AP50 | 0.9500 | 0.9510 | +0.0010 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("points"), std::string::npos) << md;
  EXPECT_NE(md.find("| AP_small | n/a | n/a | n/a |"), std::string::npos) << md;
  EXPECT_EQ(md.find("Not measured"), std::string::npos);
}

TEST(ModelCard, OutputShapesAreTheModels) {
  ModelCardInfo i = info();
  i.num_queries = 100;
  i.num_classes = 7;
  const std::string md = render_model_card(i);
  EXPECT_NE(md.find("`dets` [1, 100, 4]"), std::string::npos) << md;
  EXPECT_NE(md.find("`labels` [1, 100, 7]"), std::string::npos) << md;
  i.num_queries = 0;  // unknown: a placeholder, never a made-up number
  EXPECT_NE(render_model_card(i).find("`dets` [1, Q, 4]"), std::string::npos);
}

TEST(ModelCard, NamesClassesFloatLayersCacheCoverageAndTheReport) {
  ModelCardInfo i = info();
  i.class_names = {{1, "circle"}, {2, "square"}};
  i.layers_total = 5;
  i.float_layers = {{"/m/bbox_embed/MatMul", "box-regression head"}, {"/a|b", "why"}};
  i.cache_tensors = 9;
  i.files.push_back({"report.html", "calibration report", 4096, std::string(64, 'd')});
  const std::string md = render_model_card(i);
  EXPECT_NE(md.find("1: circle, 2: square"), std::string::npos) << md;
  EXPECT_NE(md.find("3 of the 5 Conv/MatMul/Gemm layers run in INT8; 2 stay in float"), std::string::npos) << md;
  EXPECT_NE(md.find("| `/m/bbox_embed/MatMul` | box-regression head |"), std::string::npos) << md;
  EXPECT_NE(md.find("| `/a\\|b` | why |"), std::string::npos) << md;  // a '|' does not end the cell
  EXPECT_NE(md.find("[report.html](report.html)"), std::string::npos) << md;
  EXPECT_NE(md.find("The cache holds the scales of 9 tensors: the graph input and the inputs and outputs of the 3 layers"),
            std::string::npos) << md;
  EXPECT_NE(md.find("on 64 images of data/shapes_calib"), std::string::npos) << md;
}

TEST(ModelCard, QuotesYamlValuesThatNeedIt) {
  ModelCardInfo i = info();
  i.license = "other: see \"LICENSE\"";
  const std::string md = render_model_card(i);
  EXPECT_NE(md.find("license: \"other: see \\\"LICENSE\\\"\"\n"), std::string::npos) << md;
}

}  // namespace
}  // namespace detrq::pipeline
