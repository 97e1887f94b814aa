// Core list parsing and pinning.
#include <sched.h>

#include <gtest/gtest.h>

#include "thread/cpuset.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

std::vector<int> parse_ok(std::string_view s) {
  auto r = parse_core_list(s);
  EXPECT_TRUE(r.ok()) << "\"" << s << "\": " << r.status().to_string();
  return r.ok() ? r.value() : std::vector<int>{};
}

TEST(CoreList, Parses) {
  EXPECT_EQ(parse_ok("0"), (std::vector<int>{0}));
  EXPECT_EQ(parse_ok("0-1"), (std::vector<int>{0, 1}));
  EXPECT_EQ(parse_ok("0,1"), (std::vector<int>{0, 1}));
  EXPECT_EQ(parse_ok("[0-1]"), (std::vector<int>{0, 1}));
  EXPECT_EQ(parse_ok("[0]"), (std::vector<int>{0}));
  EXPECT_EQ(parse_ok("1,0"), (std::vector<int>{1, 0}));  // order kept: the first is the main reactor
  EXPECT_EQ(parse_ok("0-2,5,7-8"), (std::vector<int>{0, 1, 2, 5, 7, 8}));
  EXPECT_EQ(parse_ok(" 2 - 3 , 9 "), (std::vector<int>{2, 3, 9}));
  EXPECT_EQ(parse_ok("4-4"), (std::vector<int>{4}));
  EXPECT_EQ(parse_ok("1023"), (std::vector<int>{1023}));
}

TEST(CoreList, RejectsBadInputWithAClearMessage) {
  for (const char* bad : {"", " ", "[]", "a", "0x1", "-1", "1-", "-", "1-0", "0,,1", "0,", ",0", "[0-1",
                          "0-1]", "0,0", "0-2,1", "1024", "99999999999", "1.5", "0 1", "+1", "[[0]]"}) {
    auto r = parse_core_list(bad);
    ASSERT_FALSE(r.ok()) << "\"" << bad << "\" parsed";
    EXPECT_EQ(r.status().code(), Errc::invalid_argument) << bad;
    EXPECT_NE(r.status().message().find("invalid core list"), std::string::npos) << r.status().message();
  }
  EXPECT_NE(parse_core_list("1-0").status().message().find("backwards"), std::string::npos);
  EXPECT_NE(parse_core_list("0,0").status().message().find("core 0 is listed twice"), std::string::npos);
}

TEST(Pinning, PinsToAnAllowedCoreAndRefusesOthers) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c)
    if (CPU_ISSET(c, &allowed)) first = c;
  ASSERT_GE(first, 0);
  EXPECT_TRUE(pin_current_thread(first).ok());
  EXPECT_EQ(sched_getcpu(), first);
  EXPECT_FALSE(pin_current_thread(CPU_SETSIZE).ok());
  EXPECT_FALSE(pin_current_thread(-1).ok());
  EXPECT_TRUE(sched_setaffinity(0, sizeof(allowed), &allowed) == 0);  // leave the test thread as it was
}

}  // namespace
}  // namespace sluice::thread
