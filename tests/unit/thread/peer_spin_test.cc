// The idle grace as the channels waiting for peers ask for it (IoChannel::peer_spin_ns): a
// reactor whose peers are all slow sleeps without spinning the grace, and any channel that
// keeps the default keeps the whole grace.
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include <gtest/gtest.h>

#include "test_util.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

using namespace testing;

// A channel with a peer that sends nothing: it waits, can wake its owner, and asks for
// `spin_ns` of spinning (UINT64_MAX: the default, the whole grace).
class PeerDevice final : public IoDevice {
 public:
  explicit PeerDevice(uint64_t spin) : spin_ns(spin), efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~PeerDevice() override { close(efd); }
  Result<std::unique_ptr<IoChannel>> create_channel() override;

  const uint64_t spin_ns;
  const int efd;
  std::atomic<uint64_t> armed{0};
};

class PeerChannel final : public IoChannel {
 public:
  explicit PeerChannel(PeerDevice& d) : IoChannel(d), dev_(d) {}
  int poll() override { return 0; }
  bool waits_for_peers() const override { return true; }
  uint64_t peer_spin_ns(uint64_t grace_ns) const override {
    return dev_.spin_ns == UINT64_MAX ? IoChannel::peer_spin_ns(grace_ns) : dev_.spin_ns;
  }
  int wake_fd() const override { return dev_.efd; }
  bool prepare_sleep() override {
    dev_.armed.fetch_add(1);
    return true;
  }

 private:
  PeerDevice& dev_;
};

Result<std::unique_ptr<IoChannel>> PeerDevice::create_channel() {
  return std::unique_ptr<IoChannel>(new PeerChannel(*this));
}

constexpr uint64_t kGraceNs = 1'000'000;

TEST(PeerSpin, WithoutPeersTheGraceStays) {
  EXPECT_EQ(thread_channels_idle(kGraceNs).spin_ns, kGraceNs);
}

TEST(PeerSpin, TheLongestAskWinsAndNothingExceedsTheGrace) {
  PeerDevice slow(0), quick(40'000), greedy(5 * kGraceNs), plain(UINT64_MAX);
  auto s = get_io_channel(slow);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(thread_channels_idle(kGraceNs).spin_ns, 0u) << "a slow peer alone: sleep at once";
  auto q = get_io_channel(quick);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(thread_channels_idle(kGraceNs).spin_ns, 40'000u);
  auto g = get_io_channel(greedy);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(thread_channels_idle(kGraceNs).spin_ns, kGraceNs) << "capped at the grace";
  EXPECT_TRUE(put_io_channel(*g).ok());
  auto p = get_io_channel(plain);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(thread_channels_idle(kGraceNs).spin_ns, kGraceNs) << "a channel that says nothing keeps the grace";
  EXPECT_TRUE(put_io_channel(*p).ok());
  EXPECT_TRUE(put_io_channel(*q).ok());
  EXPECT_TRUE(put_io_channel(*s).ok());
}

// With a grace far longer than the test may wait, only the channel's ask can put the reactor
// to sleep: reaching its sleep at all is the observable.
TEST(PeerSpin, AReactorWhosePeersAreSlowSleepsBeforeItsGrace) {
  PeerDevice slow(0);
  AppOptions o = two_reactors();
  o.idle_grace = std::chrono::hours(1);
  RunningApp app(o);
  // Before the channel: it may put the reactor to sleep (for good) as soon as it exists.
  const uint64_t sleeps = reactor_stats(1)->sleeps;
  auto ch = run_on(1, [&] { return get_io_channel(slow); });
  ASSERT_TRUE(ch.has_value() && ch->ok());
  ASSERT_TRUE(wait_until([&] { return reactor_stats(1)->sleeps > sleeps; }))
      << "the reactor spun on although its only peer asked for no spinning";
  EXPECT_GE(slow.armed.load(), 1u) << "it slept armed for its peer";
  auto st = run_on(1, [&] { return put_io_channel(ch->value()); });
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->ok());
}

}  // namespace
}  // namespace sluice::thread
