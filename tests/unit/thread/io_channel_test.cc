// IoChannel lifecycle: lazy, shared per thread, separate across threads, freed by the owner.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

using namespace testing;

class CountingDevice;

class CountingChannel final : public IoChannel {
 public:
  CountingChannel(CountingDevice& d);
  ~CountingChannel() override;
  int poll() override;

 private:
  CountingDevice& counting_;
};

// Counts channel creations, destructions and polls, and remembers which thread destroyed
// each channel.
class CountingDevice final : public IoDevice {
 public:
  std::atomic<int> created{0}, destroyed{0};
  std::atomic<uint64_t> polls{0};
  std::atomic<bool> fail_create{false};
  std::mutex mu;
  std::vector<std::pair<std::thread::id, std::thread::id>> lifetimes;  // {owner, destroyer}

  Result<std::unique_ptr<IoChannel>> create_channel() override {
    if (fail_create) return Status(Errc::not_supported, "no channels today");
    return std::unique_ptr<IoChannel>(new CountingChannel(*this));
  }
};

CountingChannel::CountingChannel(CountingDevice& d) : IoChannel(d), counting_(d) { counting_.created.fetch_add(1); }
CountingChannel::~CountingChannel() {
  counting_.destroyed.fetch_add(1);
  std::lock_guard lock(counting_.mu);
  counting_.lifetimes.emplace_back(owner(), std::this_thread::get_id());
}
int CountingChannel::poll() {
  counting_.polls.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

// No reactor needed: a foreign thread owns and polls its own channel.
TEST(IoChannel, LazyAndSharedWithinAThread) {
  CountingDevice device;
  EXPECT_EQ(device.created.load(), 0);
  auto a = get_io_channel(device);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(device.created.load(), 1);
  auto b = get_io_channel(device);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a.value(), b.value());
  EXPECT_EQ(device.created.load(), 1);
  EXPECT_EQ(a.value()->refs(), 2u);
  EXPECT_EQ(thread_channel_count(), 1u);
  EXPECT_EQ(poll_thread_channels(), 0);
  EXPECT_EQ(device.polls.load(), 1u);

  EXPECT_TRUE(put_io_channel(a.value()).ok());
  EXPECT_EQ(device.destroyed.load(), 0);
  EXPECT_TRUE(put_io_channel(b.value()).ok());
  EXPECT_EQ(device.destroyed.load(), 1);
  EXPECT_EQ(thread_channel_count(), 0u);
  EXPECT_EQ(device.channel_count(), 0u);
}

TEST(IoChannel, CreationFailureIsAStatus) {
  CountingDevice device;
  device.fail_create = true;
  auto ch = get_io_channel(device);
  EXPECT_EQ(ch.status().code(), Errc::not_supported);
  EXPECT_EQ(thread_channel_count(), 0u);
  EXPECT_EQ(put_io_channel(nullptr).code(), Errc::invalid_argument);
}

TEST(IoChannel, PutWithoutAGetIsRefused) {
  CountingDevice device;
  CountingChannel loose(device);  // not obtained through get_io_channel()
  EXPECT_EQ(put_io_channel(&loose).code(), Errc::invalid_argument);
  EXPECT_EQ(device.destroyed.load(), 0);
}

class NullDevice final : public IoDevice {
 public:
  Result<std::unique_ptr<IoChannel>> create_channel() override { return std::unique_ptr<IoChannel>(); }
};

TEST(IoChannel, DeviceReturningNoChannelIsAnError) {
  NullDevice device;
  EXPECT_FALSE(get_io_channel(device).ok());
  EXPECT_EQ(thread_channel_count(), 0u);
}

TEST(IoChannel, SeparatePerThreadAndFreedByTheOwner) {
  CountingDevice device;
  IoChannel* mine = get_io_channel(device).value();
  IoChannel* theirs = nullptr;
  std::atomic<bool> release{false};
  std::atomic<bool> got{false};
  Status foreign_put;
  std::thread other([&] {
    theirs = get_io_channel(device).value();
    got = true;
    wait_until([&] { return release.load(); });
    EXPECT_TRUE(put_io_channel(theirs).ok());
  });
  ASSERT_TRUE(wait_until([&] { return got.load(); }));
  EXPECT_NE(mine, theirs);
  EXPECT_EQ(device.created.load(), 2);
  EXPECT_EQ(device.channel_count(), 2u);
  // Releasing another thread's channel is refused and changes nothing.
  EXPECT_EQ(put_io_channel(theirs).code(), Errc::invalid_argument);
  EXPECT_EQ(device.destroyed.load(), 0);
  release = true;
  other.join();
  EXPECT_TRUE(put_io_channel(mine).ok());
  EXPECT_EQ(device.destroyed.load(), 2);
  std::lock_guard lock(device.mu);
  for (auto& [owner, destroyer] : device.lifetimes) EXPECT_EQ(owner, destroyer);
}

// On reactors: each reactor gets its own channel, polls it every iteration, and the last
// put on the owning reactor destroys it there.
TEST(IoChannel, ReactorsOwnAndPollTheirChannels) {
  CountingDevice device;
  {
    RunningApp app;
    IoChannel* ch[2] = {};
    std::thread::id tid[2];
    for (uint32_t id = 0; id < 2; ++id) {
      auto got = run_on(id, [&] {
        tid[id] = std::this_thread::get_id();
        IoChannel* a = get_io_channel(device).value();
        IoChannel* b = get_io_channel(device).value();
        EXPECT_EQ(a, b);
        EXPECT_TRUE(put_io_channel(b).ok());
        return a;
      });
      ASSERT_TRUE(got.has_value());
      ch[id] = *got;
    }
    EXPECT_NE(ch[0], ch[1]);
    EXPECT_EQ(device.created.load(), 2);
    EXPECT_EQ(ch[0]->owner(), tid[0]);

    // Each reactor polls its channel on every loop iteration while it is awake; a busy
    // poller keeps reactor 1 awake.
    auto spin = run_on(1, [] { return register_poller([](void*) { return PollStatus::busy; }, nullptr).value(); });
    ASSERT_TRUE(spin.has_value());
    // Read in this order, polls can only be over-counted against iterations.
    uint64_t polls0 = device.polls.load();
    uint64_t iterations0 = reactor_stats(1)->iterations;
    EXPECT_TRUE(wait_until([&] { return device.polls.load() > polls0 + 10000; }));
    uint64_t iterations1 = reactor_stats(1)->iterations;
    uint64_t polls1 = device.polls.load();
    EXPECT_GT(iterations1, iterations0);
    EXPECT_GE(polls1 - polls0 + 2, iterations1 - iterations0);

    EXPECT_EQ(put_io_channel(ch[1]).code(), Errc::invalid_argument);  // not ours
    for (uint32_t id = 0; id < 2; ++id) {
      auto st = run_on(id, [&] {
        if (id == 1) {
          EXPECT_TRUE(unregister_poller(*spin).ok());
        }
        return put_io_channel(ch[id]);
      });
      ASSERT_TRUE(st.has_value());
      EXPECT_TRUE(st->ok());
    }
    EXPECT_EQ(device.destroyed.load(), 2);
  }
  std::lock_guard lock(device.mu);
  ASSERT_EQ(device.lifetimes.size(), 2u);
  for (auto& [owner, destroyer] : device.lifetimes) EXPECT_EQ(owner, destroyer);
}

}  // namespace
}  // namespace sluice::thread
