// Adaptive polling and kick suppression through a real connection on a reactor: a queue's
// reactor sleeps on the kick soon after the queue goes idle, whatever its idle grace, with the
// guest's kicks turned back on first; while it polls, the guest is asked not to kick. The
// reactors' idle grace is an hour here, longer than any wait in these tests, so reaching a
// sleep at all shows that the queue, not the grace, decided: no timing is asserted.
#include <linux/virtio_blk.h>
#include <sys/eventfd.h>

#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include "blk_fixture.h"
#include "target/vhost/vhost.h"

namespace sluice::vhost {
namespace {

constexpr std::chrono::microseconds kHourGrace = std::chrono::hours(1);

class BlkPollingTest : public BlkTest {
 protected:
  BlkPollingTest() : BlkTest("0", kHourGrace) {}

  std::vector<FakeGuest::Buf> read_request() {
    return {{header(VIRTIO_BLK_T_IN, 0), 16, false}, {guest_.alloc(512), 512, true}, {status_byte(), 1, true}};
  }
  uint64_t sleeps() { return thread::reactor_stats(0)->sleeps; }
};

TEST_F(BlkPollingTest, TheReactorSleepsOnTheKickOnceTheQueueIsIdle) {
  // The queue started with kicks on and its reactor went to sleep without its hour of grace.
  ASSERT_TRUE(sluice::testing::wait_until([&] { return sleeps() > 0; })) << "the reactor spun its idle grace";
  for (int i = 0; i < 3; ++i) {
    const uint64_t before = sleeps();
    ASSERT_EQ(run(read_request()).status, VIRTIO_BLK_S_OK) << "request " << i << ": the kick did not wake the reactor";
    // Only a reactor about to sleep publishes avail_event (kicks back on) past this request;
    // and it then sleeps, since nothing else is left to do.
    ASSERT_TRUE(sluice::testing::wait_until([&] {
      return __atomic_load_n(&guest_.avail_event(), __ATOMIC_ACQUIRE) == guest_.avail()->idx && sleeps() > before;
    })) << "request " << i << ": the reactor did not go back to sleep with kicks on after the queue went idle";
  }
}

// With the longest poll allowed, the reactor keeps polling the queue after a request: the
// guest is asked not to kick (EVENT_IDX: avail_event stays behind), and a request it adds
// without a kick is served all the same. Stopping the ring turns kicks back on for whoever
// serves it next.
class BlkLongPollTest : public BlkPollingTest {
 protected:
  BlkLongPollTest() : saved_(max_poll_spin_us()) { set_max_poll_spin_us(3'600'000'000u); }
  ~BlkLongPollTest() override { set_max_poll_spin_us(saved_); }

 private:
  uint32_t saved_;
};

TEST_F(BlkLongPollTest, APolledQueueAsksTheGuestNotToKickAndTurnsKicksBackOnWhenItStops) {
  ASSERT_EQ(run(read_request()).status, VIRTIO_BLK_S_OK);  // kicked: kicks were on at start
  EXPECT_EQ(__atomic_load_n(&guest_.avail_event(), __ATOMIC_ACQUIRE), 0) << "polled: avail_event stays behind";
  uint64_t kicks;
  (void)eventfd_read(kick_.get(), &kicks);  // the first request's, unread by a reactor that never slept
  // run() kicks only if vring_need_event() says so, as Linux does: here it does not. (From
  // the second request on the queue knows the guest's pace and may sleep again: nothing
  // about avail_event is asserted after it.)
  ASSERT_EQ(run(read_request()).status, VIRTIO_BLK_S_OK) << "a request added without a kick was not polled";
  EXPECT_NE(eventfd_read(kick_.get(), &kicks), 0) << "the guest kicked a queue that was being polled";

  front_->send_state(Request::get_vring_base, 0, 0);
  Message m;
  ASSERT_TRUE(front_->recv(&m));
  EXPECT_EQ(m.as<vhost_vring_state>().num, 2u);
  EXPECT_EQ(__atomic_load_n(&guest_.avail_event(), __ATOMIC_ACQUIRE), 2) << "a stopped ring was left with kicks off";
}

}  // namespace
}  // namespace sluice::vhost
