// CalibrationReport: self-contained HTML with escaped names, inline SVG plots and the accuracy summary.
#include "detrq/quant/calibration_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "detrq/quant/statistics_observer.h"

using namespace detrq::quant;

TEST(CalibrationReport, IsSelfContainedWithPlotsDecisionsAndAccuracy) {
  StatisticsObserver obs;
  std::vector<float> v;
  for (int i = 0; i < 5000; ++i) v.push_back(std::sin(static_cast<float>(i)) * 3.0F);
  obs.observe("/enc/<fc>_output", v);
  std::vector<float> masked(10, -std::numeric_limits<float>::infinity());
  obs.observe("masked", masked);
  CalibrationTable table = build_calibration_table(obs.statistics(), CalibrationMethod::kEntropy);
  CalibrationReportInput in;
  in.model_name = "tiny & small";
  in.table = &table;
  in.statistics = &obs.statistics();
  in.decisions.push_back({"/m/bbox_embed/MatMul", "MatMul", false, "box-regression head"});
  in.fidelity.images = 2;
  in.fidelity.outputs.push_back({"dets", 35.25});
  in.fidelity.top_detection_agreement = 0.9;
  std::string html = render_calibration_report(in);
  EXPECT_NE(html.find("tiny &amp; small"), std::string::npos);
  EXPECT_NE(html.find("/enc/&lt;fc&gt;_output"), std::string::npos);
  EXPECT_EQ(html.find("<fc>"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("35.25"), std::string::npos);
  EXPECT_NE(html.find("90.0%"), std::string::npos);
  EXPECT_NE(html.find("box-regression head"), std::string::npos);
  EXPECT_NE(html.find("100.0% of its values are inf or NaN"), std::string::npos);
  // Nothing is fetched from elsewhere.
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
}
