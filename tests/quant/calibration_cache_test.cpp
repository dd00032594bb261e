// CalibrationCache: the TensorRT text format, exact round trips and errors that name file and line.
#include "detrq/quant/calibration_cache.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <random>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

using namespace detrq::quant;

namespace {
std::string error_of(const std::string& text) {
  try {
    parse_calibration_cache(text, "calib.cache");
  } catch (const detrq::Error& e) {
    EXPECT_EQ(e.kind(), detrq::ErrorKind::kInvalidInput);
    return std::string(e.what());
  }
  return {};
}
}  // namespace

TEST(CalibrationCache, WritesTensorRtTextWithBigEndianScaleBits) {
  CalibrationCache cache;
  cache.scales["input"] = 1.0F / 127.0F;  // 0x3c010204
  cache.scales["/backbone/conv/Conv_output_0"] = 0.5F;  // 0x3f000000
  EXPECT_EQ(cache.to_text(),
            "TRT-8601-EntropyCalibration2\n"
            "/backbone/conv/Conv_output_0: 3f000000\n"
            "input: 3c010204\n");
}

TEST(CalibrationCache, WriteThenReadIsExact) {
  CalibrationCache cache;
  cache.version = "100100";
  cache.algorithm = cache_algorithm_for("minmax");
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(1e-8F, 10.0F);
  for (int i = 0; i < 500; ++i) cache.scales[fmt::format("t{}: odd name", i)] = d(rng);
  cache.scales["zero"] = 0.0F;
  cache.scales["tiny"] = std::bit_cast<float>(uint32_t{1});  // a denormal
  auto dir = std::filesystem::temp_directory_path() / ("detrq_cache_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_calibration_cache(cache, dir / "calibration.cache");
  CalibrationCache back = read_calibration_cache(dir / "calibration.cache");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(back.version, "100100");
  EXPECT_EQ(back.algorithm, "MinMaxCalibration");
  ASSERT_EQ(back.scales.size(), cache.scales.size());
  for (const auto& [name, scale] : cache.scales) {
    ASSERT_EQ(std::bit_cast<uint32_t>(back.scales.at(name)), std::bit_cast<uint32_t>(scale)) << name;
  }
}

TEST(CalibrationCache, ReadsWhatTensorRtWrites) {
  // As TensorRT 8 writes it: CRLF-free, names with spaces and brackets, lower-case hex.
  auto cache = parse_calibration_cache(
      "TRT-8601-EntropyCalibration2\ninput: 3c010a14\n(Unnamed Layer* 0) [Convolution]_output: 3d1c8fe7\n",
      "calib.cache");
  EXPECT_EQ(cache.algorithm, "EntropyCalibration2");
  EXPECT_EQ(std::bit_cast<uint32_t>(cache.scales.at("input")), 0x3c010a14u);
  EXPECT_EQ(std::bit_cast<uint32_t>(cache.scales.at("(Unnamed Layer* 0) [Convolution]_output")), 0x3d1c8fe7u);
}

TEST(CalibrationCache, MalformedLinesNameFileAndLine) {
  EXPECT_NE(error_of("").find("calib.cache:1"), std::string::npos);
  EXPECT_NE(error_of("input: 3c010a14\n").find("calib.cache:1"), std::string::npos);
  EXPECT_NE(error_of("TRT-x86-EntropyCalibration2\n").find("not a number"), std::string::npos);
  EXPECT_NE(error_of("TRT-8601-\n").find("no algorithm"), std::string::npos);
  EXPECT_NE(error_of("TRT-8601-EntropyCalibration2\na: 3c010a14\nno separator\n").find("calib.cache:3"),
            std::string::npos);
  EXPECT_NE(error_of("TRT-8601-EntropyCalibration2\na: 3c01zz14\n").find("not hexadecimal"), std::string::npos);
  EXPECT_NE(error_of("TRT-8601-EntropyCalibration2\na: 3c010a1400\n").find("1 to 8"), std::string::npos);
  EXPECT_NE(error_of("TRT-8601-EntropyCalibration2\na: 7f800000\n").find("finite"), std::string::npos);
  EXPECT_NE(error_of("TRT-8601-EntropyCalibration2\na: bf800000\n").find("finite"), std::string::npos);
  EXPECT_NE(error_of("TRT-8601-EntropyCalibration2\na: 3c010a14\na: 3c010a14\n").find("twice"), std::string::npos);
}

TEST(CalibrationCache, MissingFileIsAnIoError) {
  try {
    read_calibration_cache("/nonexistent/calibration.cache");
    FAIL();
  } catch (const detrq::Error& e) {
    EXPECT_EQ(e.kind(), detrq::ErrorKind::kIo);
  }
}
