#include "base/size.h"

#include <gtest/gtest.h>

namespace sluice {

TEST(Size, ParsesUnits) {
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("4k"), 4096u);
  EXPECT_EQ(*parse_size("64M"), 64ull << 20);
  EXPECT_EQ(*parse_size("1G"), 1ull << 30);
  EXPECT_EQ(*parse_size("2GiB"), 2ull << 30);
}

TEST(Size, RejectsGarbage) {
  for (const char* bad : {"", "k", "12Q", "1.5G", "99999999999999999999", "17179869184T"}) {
    auto r = parse_size(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Errc::invalid_argument);
    }
  }
}

TEST(Size, Formats) {
  EXPECT_EQ(format_size(512), "512");
  EXPECT_EQ(format_size(64ull << 20), "64M");
  EXPECT_EQ(format_size(1536), "1.5K");
}

}  // namespace sluice
