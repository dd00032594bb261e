// CalibrationTable: from statistics (non-finite tensors left in float), JSON round trip, cache view,
// and refusing a table made for another model.
#include "detrq/quant/calibration_table.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/quant/statistics_observer.h"

using namespace detrq::quant;

namespace {
std::map<std::string, TensorStatistics> sample_statistics() {
  StatisticsObserver obs;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> normal, masked, zeros(16, 0.0F);
  for (int i = 0; i < 1000; ++i) normal.push_back(static_cast<float>(i % 100) / 10.0F - 5.0F);
  for (int i = 0; i < 100; ++i) masked.push_back(i < 80 ? -inf : 1.0F);
  obs.observe("conv_out", normal);
  obs.observe("masked_logits", masked);
  obs.observe("all_zero", zeros);
  return obs.statistics();
}
}  // namespace

TEST(CalibrationTable, LeavesMostlyNonFiniteAndAllZeroTensorsInFloat) {
  auto table = build_calibration_table(sample_statistics(), CalibrationMethod::kMinMax);
  EXPECT_EQ(table.method, "minmax");
  const auto& conv = table.tensors.at("conv_out");
  EXPECT_TRUE(conv.quantized);
  EXPECT_DOUBLE_EQ(conv.amax, 5.0);
  EXPECT_EQ(conv.scale, static_cast<float>(5.0 / 127.0));
  const auto& masked = table.tensors.at("masked_logits");
  EXPECT_FALSE(masked.quantized);
  EXPECT_NE(masked.reason.find("80.0%"), std::string::npos);
  EXPECT_EQ(masked.nonfinite, 80u);
  EXPECT_FALSE(table.tensors.at("all_zero").quantized);

  auto cache = table.to_cache();
  EXPECT_EQ(cache.algorithm, "MinMaxCalibration");
  EXPECT_EQ(cache.scales.size(), 1u);
  EXPECT_EQ(cache.scales.at("conv_out"), conv.scale);
}

TEST(CalibrationTable, JsonRoundTripIsExact) {
  auto table = build_calibration_table(sample_statistics(), CalibrationMethod::kPercentile, {99.9});
  table.model_fingerprint = "0123456789abcdef";
  table.tensors.at("conv_out").sensitivity_db = 41.5;
  auto back = parse_calibration_table(table.to_json(), "calibration.json");
  EXPECT_EQ(back.method, "percentile");
  EXPECT_EQ(back.percentile, 99.9);
  EXPECT_EQ(back.model_fingerprint, table.model_fingerprint);
  ASSERT_EQ(back.tensors.size(), table.tensors.size());
  for (const auto& [name, t] : table.tensors) {
    const auto& b = back.tensors.at(name);
    EXPECT_EQ(b.amax, t.amax) << name;
    EXPECT_EQ(b.scale, t.scale) << name;
    EXPECT_EQ(b.quantized, t.quantized) << name;
    EXPECT_EQ(b.reason, t.reason) << name;
    EXPECT_EQ(b.sensitivity_db, t.sensitivity_db) << name;
  }
}

TEST(CalibrationTable, MalformedJsonAndForeignModelsAreRefused) {
  EXPECT_THROW(parse_calibration_table("{", "t.json"), detrq::Error);
  EXPECT_THROW(parse_calibration_table("{\"format\": \"other\"}", "t.json"), detrq::Error);
  EXPECT_THROW(parse_calibration_table(
                   "{\"format\": \"detrq-calibration\", \"version\": 1, \"model_fingerprint\": \"x\", "
                   "\"method\": \"entropy\", \"tensors\": [{\"name\": \"a\", \"amax\": 1, \"scale\": -1, \"quantized\": true}]}",
                   "t.json"),
               detrq::Error);

  detrq::onnx::Model a, b;
  detrq::onnx::Node relu;
  relu.op_type = "Relu";
  relu.inputs = {"x"};
  relu.outputs = {"y"};
  a.graph.nodes.push_back(relu);
  relu.op_type = "Sigmoid";
  b.graph.nodes.push_back(relu);
  CalibrationTable table;
  table.model_fingerprint = model_fingerprint(a);
  EXPECT_NO_THROW(check_table_matches(table, a, "t.json"));
  try {
    check_table_matches(table, b, "t.json");
    FAIL();
  } catch (const detrq::Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos);
  }
}
