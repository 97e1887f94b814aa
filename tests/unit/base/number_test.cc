// Strict numbers: what strtoul would quietly take as some other number is an error here.
#include "base/number.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(ParseUint, TakesDecimalDigitsOnly) {
  EXPECT_EQ(*parse_uint("0"), 0u);
  EXPECT_EQ(*parse_uint("42"), 42u);
  EXPECT_EQ(*parse_uint("18446744073709551615"), UINT64_MAX);
  for (const char* bad : {"", "1abc", "abc", " 1", "1 ", "-1", "+1", "0x10", "1.5", "1e3", "4k"}) {
    auto r = parse_uint(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument) << bad;
  }
}

TEST(ParseUint, LeadingZerosAreDecimalNotOctal) { EXPECT_EQ(*parse_uint("010"), 10u); }

TEST(ParseUint, BoundsAndOverflowAreOutOfRange) {
  EXPECT_EQ(parse_uint("18446744073709551616").status().code(), Errc::out_of_range);
  EXPECT_EQ(parse_uint("0", 1, 10).status().code(), Errc::out_of_range);
  EXPECT_EQ(parse_uint("11", 1, 10).status().code(), Errc::out_of_range);
  EXPECT_EQ(*parse_uint("10", 1, 10), 10u);
}

TEST(ParseDecimal, TakesDigitsWithOneDot) {
  EXPECT_DOUBLE_EQ(*parse_decimal("2", 0, 10), 2.0);
  EXPECT_DOUBLE_EQ(*parse_decimal("0.5", 0, 10), 0.5);
  EXPECT_DOUBLE_EQ(*parse_decimal(".5", 0, 10), 0.5);
  for (const char* bad : {"", ".", "1..2", "1.2.3", "1abc", "-1", "1e3", "inf", "nan", " 1"}) {
    auto r = parse_decimal(bad, 0, 1e9);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument) << bad;
  }
  EXPECT_EQ(parse_decimal("11", 0, 10).status().code(), Errc::out_of_range);
}

}  // namespace
}  // namespace sluice
