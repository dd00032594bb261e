// core::Sha256: known answers (FIPS 180-2) and streaming equal to one-shot.
#include "detrq/core/sha256.h"

#include <gtest/gtest.h>

#include <string>

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(detrq::core::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(detrq::core::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  detrq::core::Sha256 h;
  for (std::size_t pos = 0; pos < data.size(); pos += 4093) h.update(data.data() + pos, std::min<std::size_t>(4093, data.size() - pos));
  EXPECT_EQ(h.hex_digest(), detrq::core::sha256_hex(data));
}
