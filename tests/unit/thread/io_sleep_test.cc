// Sleeping with I/O in flight: a reactor (or a foreign thread) whose channels can wake it
// sleeps on their wake descriptors instead of spinning, and a completion wakes it.
//
// The channel here stands in for a device: the test "completes" its request from another
// thread the way a kernel does, by publishing the completion and then signalling an eventfd.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "test_util.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

using namespace testing;

class SignallingDevice;

class SignallingChannel : public IoChannel {
 public:
  explicit SignallingChannel(SignallingDevice& d);
  // A channel of another device kind (a subclass's) that signals through `d`.
  SignallingChannel(IoDevice& owner, SignallingDevice& d) : IoChannel(owner), dev_(d) {}
  int poll() override;
  bool has_outstanding() const override;
  int wake_fd() const override;
  bool prepare_sleep() override;
  void finish_sleep(bool woken) override;

 private:
  SignallingDevice& dev_;
};

// One request in flight from the start; complete() finishes it from any thread.
class SignallingDevice final : public IoDevice {
 public:
  SignallingDevice() : efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~SignallingDevice() override { close(efd); }

  Result<std::unique_ptr<IoChannel>> create_channel() override {
    return std::unique_ptr<IoChannel>(new SignallingChannel(*this));
  }
  // What a kernel does: publish the completion, then signal.
  void complete() {
    ready.store(true);
    uint64_t one = 1;
    ASSERT_EQ(write(efd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }

  const int efd;
  std::atomic<bool> outstanding{true};
  std::atomic<bool> ready{false};
  std::atomic<uint64_t> polls{0};
  std::atomic<uint64_t> completions{0};
  std::atomic<uint64_t> armed{0};
  std::atomic<uint64_t> woken{0};
  std::atomic<uint64_t> finished{0};  // finish_sleep() calls: one per successful prepare_sleep()
};

SignallingChannel::SignallingChannel(SignallingDevice& d) : IoChannel(d), dev_(d) {}

int SignallingChannel::poll() {
  dev_.polls.fetch_add(1, std::memory_order_relaxed);
  if (!dev_.ready.exchange(false)) return 0;
  dev_.outstanding = false;
  dev_.completions.fetch_add(1);
  return 1;
}
bool SignallingChannel::has_outstanding() const { return dev_.outstanding.load(); }
int SignallingChannel::wake_fd() const { return dev_.efd; }
bool SignallingChannel::prepare_sleep() {
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(dev_.efd, &count, sizeof(count));  // reset, then look
  if (dev_.ready.load()) return false;
  dev_.armed.fetch_add(1);
  return true;
}
void SignallingChannel::finish_sleep(bool woken) {
  dev_.finished.fetch_add(1);
  if (woken) dev_.woken.fetch_add(1);
}

AppOptions with_io_spin(std::chrono::microseconds spin) {
  AppOptions o = two_reactors();
  o.io_spin = spin;
  return o;
}

// The behaviour the uring and aio backends rely on: with I/O in flight and nothing ready, the
// reactor sleeps on its channels' wake descriptors, and a completion wakes it.
TEST(IoSleep, ReactorSleepsWhileIoIsInFlightAndWakesOnCompletion) {
  SignallingDevice device;
  {
    RunningApp app(with_io_spin(std::chrono::microseconds(0)));
    auto ch = run_on(1, [&] { return get_io_channel(device); });
    ASSERT_TRUE(ch.has_value() && ch->ok());
    IoChannel* channel = ch->value();

    ASSERT_TRUE(wait_until([] { return reactor_stats(1)->io_sleeps > 0; }));
    const ReactorStats before = *reactor_stats(1);
    std::this_thread::sleep_for(300ms);  // time for a spinning reactor to show itself
    const ReactorStats after = *reactor_stats(1);
    // A few rounds of the loop per sleep, where a spinning reactor goes round millions of times.
    EXPECT_LE(after.iterations - before.iterations, 3 * (after.io_sleeps - before.io_sleeps) + 8)
        << "the reactor went round its loop " << after.iterations - before.iterations << " times with I/O in flight";
    EXPECT_EQ(device.completions.load(), 0u);

    // Still asleep (nothing has signalled it): the completion must wake it.
    device.complete();
    ASSERT_TRUE(wait_until([&] { return device.completions.load() == 1; })) << "the completion never woke the reactor";
    EXPECT_GE(device.woken.load(), 1u);
    EXPECT_GE(device.armed.load(), 1u);

    auto st = run_on(1, [&] { return put_io_channel(channel); });
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(st->ok());
  }
  EXPECT_EQ(device.channel_count(), 0u);
}

TEST(IoSleep, SpinForeverKeepsPollingWithIoInFlight) {
  SignallingDevice device;
  {
    RunningApp app(with_io_spin(AppOptions::kIoSpinForever));
    auto ch = run_on(1, [&] { return get_io_channel(device); });
    ASSERT_TRUE(ch.has_value() && ch->ok());
    IoChannel* channel = ch->value();
    const uint64_t polls = device.polls.load();
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(reactor_stats(1)->io_sleeps, 0u);
    EXPECT_EQ(device.armed.load(), 0u);
    EXPECT_GT(device.polls.load() - polls, 1000u);  // polled every iteration

    device.complete();
    ASSERT_TRUE(wait_until([&] { return device.completions.load() == 1; }));
    auto st = run_on(1, [&] { return put_io_channel(channel); });
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(st->ok());
  }
}

// A thread that is not a reactor sleeps on its own channels.
TEST(IoSleep, ForeignThreadSleepsUntilACompletion) {
  SignallingDevice device;
  EXPECT_FALSE(sleep_on_thread_channels(1'000'000)) << "no channel: nothing to sleep on";
  auto ch = get_io_channel(device);
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(thread_channels_idle(0).wait, ChannelsWait::can_sleep);

  std::thread completer([&] {
    std::this_thread::sleep_for(30ms);
    device.complete();
  });
  bool slept = false;
  const uint64_t deadline = clock::now_ns() + 10'000'000'000ull;
  while (device.completions.load() == 0 && clock::now_ns() < deadline) {
    if (poll_thread_channels() > 0) break;
    slept |= sleep_on_thread_channels(1'000'000'000);
  }
  completer.join();
  EXPECT_EQ(device.completions.load(), 1u);
  EXPECT_TRUE(slept);
  EXPECT_GE(device.woken.load(), 1u) << "the wake descriptor's readiness was not reported to the channel";
  EXPECT_EQ(thread_channels_idle(0).wait, ChannelsWait::idle);
  EXPECT_FALSE(sleep_on_thread_channels(1'000'000)) << "nothing in flight: nothing would wake the thread";
  EXPECT_TRUE(put_io_channel(*ch).ok());
}

// A completion that is ready before the thread arms must be polled, not slept through.
TEST(IoSleep, ReadyCompletionIsNotSleptThrough) {
  SignallingDevice device;
  auto ch = get_io_channel(device);
  ASSERT_TRUE(ch.ok());
  device.complete();
  std::vector<pollfd> fds;
  EXPECT_FALSE(arm_thread_channels(fds));
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(poll_thread_channels(), 1);
  EXPECT_TRUE(put_io_channel(*ch).ok());
}

// A channel that cannot wake its owner keeps the thread polling.
class MuteChannel final : public IoChannel {
 public:
  using IoChannel::IoChannel;
  int poll() override { return 0; }
  bool has_outstanding() const override { return true; }
};
class MuteDevice final : public IoDevice {
 public:
  Result<std::unique_ptr<IoChannel>> create_channel() override {
    return std::unique_ptr<IoChannel>(new MuteChannel(*this));
  }
};

TEST(IoSleep, AChannelThatCannotWakeKeepsTheThreadPolling) {
  SignallingDevice wakeable;
  MuteDevice mute;
  auto a = get_io_channel(wakeable);
  auto b = get_io_channel(mute);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(thread_channels_idle(0).wait, ChannelsWait::must_poll);
  EXPECT_FALSE(sleep_on_thread_channels(1'000'000'000));
  // Arming the first channel was undone when the second refused.
  EXPECT_EQ(wakeable.armed.load(), wakeable.finished.load());
  EXPECT_TRUE(put_io_channel(*b).ok());
  EXPECT_TRUE(put_io_channel(*a).ok());
}

// A channel that can block in the kernel itself (io_uring's submit-and-wait): it stands in by
// blocking on the device's eventfd, and counts the waits.
class KernelWaitChannel final : public SignallingChannel {
 public:
  using SignallingChannel::SignallingChannel;
  bool wait_in_kernel(uint64_t timeout_ns) override {
    kernel_waits.fetch_add(1);
    pollfd p{wake_fd(), POLLIN, 0};
    (void)::poll(&p, 1, static_cast<int>(timeout_ns / 1'000'000));
    return true;
  }
  static inline std::atomic<uint64_t> kernel_waits{0};
};
class KernelWaitDevice final : public IoDevice {
 public:
  explicit KernelWaitDevice(SignallingDevice& sig) : sig_(sig) {}
  Result<std::unique_ptr<IoChannel>> create_channel() override {
    return std::unique_ptr<IoChannel>(new KernelWaitChannel(*this, sig_));
  }

 private:
  SignallingDevice& sig_;
};

// With one channel in flight that can wait in the kernel, the thread waits there, without
// arming anything; with two, it arms both and sleeps in ppoll as before.
TEST(IoSleep, ASingleBusyChannelThatCanWaitInTheKernelDoesSo) {
  SignallingDevice sig;
  KernelWaitDevice device(sig);
  auto ch = get_io_channel(device);
  ASSERT_TRUE(ch.ok());
  KernelWaitChannel::kernel_waits = 0;
  std::thread completer([&] {
    std::this_thread::sleep_for(30ms);
    sig.complete();
  });
  const uint64_t deadline = clock::now_ns() + 10'000'000'000ull;
  bool slept = false;
  while (sig.completions.load() == 0 && clock::now_ns() < deadline) {
    if (poll_thread_channels() > 0) break;
    slept |= sleep_on_thread_channels(1'000'000'000);
  }
  completer.join();
  EXPECT_EQ(sig.completions.load(), 1u);
  EXPECT_TRUE(slept);
  EXPECT_GE(KernelWaitChannel::kernel_waits.load(), 1u);
  EXPECT_EQ(sig.armed.load(), 0u) << "armed although the channel waits in the kernel";

  // A second busy channel: neither can wait alone, so both are armed.
  sig.outstanding = true;
  SignallingDevice other;
  auto ch2 = get_io_channel(other);
  ASSERT_TRUE(ch2.ok());
  KernelWaitChannel::kernel_waits = 0;
  EXPECT_TRUE(sleep_on_thread_channels(1'000'000));  // nothing completes: a timed-out sleep
  EXPECT_EQ(KernelWaitChannel::kernel_waits.load(), 0u);
  EXPECT_EQ(sig.armed.load(), 1u);
  EXPECT_EQ(other.armed.load(), 1u);
  EXPECT_TRUE(put_io_channel(*ch2).ok());
  sig.outstanding = false;
  EXPECT_TRUE(put_io_channel(*ch).ok());
}

}  // namespace
}  // namespace sluice::thread
