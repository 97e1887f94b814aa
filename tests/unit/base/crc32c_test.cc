#include "base/crc32c.h"

#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace sluice {

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  unsigned char zeros[32] = {};
  EXPECT_EQ(crc32c(zeros, sizeof zeros), 0x8A9136AAu);  // RFC 3720 B.4
}

TEST(Crc32c, ChainsAcrossBuffers) {
  std::string s = "The quick brown fox jumps over the lazy dog";
  uint32_t whole = crc32c(s.data(), s.size());
  uint32_t part = crc32c(s.data(), 10);
  EXPECT_EQ(crc32c(s.data() + 10, s.size() - 10, part), whole);
}

TEST(Crc32c, DetectsSingleBitFlip) {
  std::string s(4096, 'x');
  uint32_t before = crc32c(s.data(), s.size());
  s[1234] ^= 0x10;
  EXPECT_NE(crc32c(s.data(), s.size()), before);
}

}  // namespace sluice
