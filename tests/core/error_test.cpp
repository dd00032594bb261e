// Error messages follow "<where>: <what> (<hint>)" and carry the exit code of their kind.
#include "detrq/core/error.h"

#include <gtest/gtest.h>

TEST(Error, FormatsWhereWhatHint) {
  detrq::Error e(detrq::ErrorKind::kInvalidInput, "model.onnx", "truncated protobuf", "re-export the model");
  EXPECT_STREQ(e.what(), "model.onnx: truncated protobuf (re-export the model)");
  EXPECT_EQ(e.exit_code(), 3);
}

TEST(Error, OmitsEmptyParts) {
  detrq::Error e(detrq::ErrorKind::kNetwork, "", "connection refused");
  EXPECT_STREQ(e.what(), "connection refused");
  EXPECT_EQ(e.exit_code(), 5);
}
