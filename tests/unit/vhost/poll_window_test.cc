// The adaptive poll window (poll_window.h) on made-up arrival times: no clock involved.
#include <gtest/gtest.h>

#include "target/vhost/poll_window.h"

namespace sluice::vhost {
namespace {

constexpr uint64_t kMax = 50'000;  // ns

TEST(PollWindow, PollsTheMostAllowedUntilTheGuestsPaceIsKnown) {
  PollWindow w(kMax);
  EXPECT_EQ(w.spin_ns(), kMax);
  w.arrived(1'000'000);
  EXPECT_EQ(w.spin_ns(), kMax) << "one arrival says nothing about the gap";
}

TEST(PollWindow, AQuickGuestIsPolledForAFewOfItsGaps) {
  PollWindow w(kMax);
  uint64_t t = 1'000'000;
  for (int i = 0; i < 32; ++i) w.arrived(t += 5'000);
  EXPECT_EQ(w.gap_ns(), 5'000u);
  EXPECT_EQ(w.spin_ns(), PollWindow::kGapsPolled * 5'000);
  for (int i = 0; i < 32; ++i) w.arrived(t += 30'000);
  EXPECT_EQ(w.spin_ns(), kMax) << "capped";
}

TEST(PollWindow, ASlowGuestIsNotPolledForAndAQuickBurstBringsPollingBack) {
  PollWindow w(kMax);
  uint64_t t = 1'000'000;
  for (int i = 0; i < 32; ++i) w.arrived(t += 400'000);  // a guest under emulation
  EXPECT_EQ(w.spin_ns(), 0u);
  t += 3'600'000'000'000ull;  // an hour's pause counts as no more than twice the cap
  w.arrived(t);
  EXPECT_LE(w.gap_ns(), 2 * kMax);
  int arrivals = 0;
  while (w.spin_ns() == 0 && arrivals < 64) {
    w.arrived(t += 2'000);
    ++arrivals;
  }
  EXPECT_GT(w.spin_ns(), 0u);
  EXPECT_LT(arrivals, 16) << "a burst of quick requests should bring polling back within a few batches";
}

TEST(PollWindow, ZeroMaxNeverPolls) {
  PollWindow w(0);
  EXPECT_EQ(w.spin_ns(), 0u);
  w.arrived(1'000);
  w.arrived(1'001);
  EXPECT_EQ(w.spin_ns(), 0u);
}

}  // namespace
}  // namespace sluice::vhost
