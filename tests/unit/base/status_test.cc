#include "base/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace sluice {

TEST(Status, OkHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status s(Errc::out_of_range, "block 10 beyond 8");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::out_of_range);
  EXPECT_EQ(s.to_string(), "out_of_range: block 10 beyond 8");
}

TEST(Status, ErrnoMapsToCodes) {
  EXPECT_EQ(errno_status(ENOENT, "open /x").code(), Errc::not_found);
  EXPECT_EQ(errno_status(ENOSPC, "write").code(), Errc::no_space);
  EXPECT_NE(errno_status(ENOENT, "open /x").message().find("open /x"), std::string::npos);
  EXPECT_EQ(errno_status(ENOTDIR, "open /f/x").code(), Errc::not_a_directory);
  EXPECT_EQ(errno_status(EISDIR, "open /d").code(), Errc::is_a_directory);
  EXPECT_EQ(errno_status(ENOTEMPTY, "rmdir /d").code(), Errc::not_empty);
  EXPECT_EQ(errno_status(ENAMETOOLONG, "open /x").code(), Errc::name_too_long);
}

TEST(Status, EveryCodeHasAName) {
  for (int c = 0; c <= static_cast<int>(Errc::wrong_format); ++c)
    EXPECT_NE(errc_name(static_cast<Errc>(c)), "unknown") << c;
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(Status(Errc::busy, ""));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Errc::busy);
}

}  // namespace sluice
