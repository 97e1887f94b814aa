// Pollers, and the adaptive polling that lets an idle reactor sleep.
#include <atomic>
#include <chrono>
#include <cstdint>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "test_util.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

using namespace testing;

Poller* register_on(uint32_t reactor, PollFn fn, void* arg, uint64_t period_us = 0) {
  auto p = run_on(reactor, [=] { return register_poller(fn, arg, period_us, "test"); });
  if (!p.has_value()) return nullptr;
  EXPECT_TRUE(p->ok()) << p->status().to_string();
  return p->ok() ? p->value() : nullptr;
}

void unregister_on(uint32_t reactor, Poller* poller) {
  auto st = run_on(reactor, [=] { return unregister_poller(poller); });
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->ok()) << st->to_string();
}

TEST(Poller, RegisterOnAForeignThreadFails) {
  auto p = register_poller([](void*) { return PollStatus::idle; }, nullptr);
  EXPECT_EQ(p.status().code(), Errc::invalid_argument);
  int calls = 0;
  auto q = register_poller([&calls] { return ++calls, PollStatus::idle; });
  EXPECT_EQ(q.status().code(), Errc::invalid_argument);
  EXPECT_EQ(calls, 0);
}

TEST(Poller, ActivePollerRunsEveryIterationUntilUnregistered) {
  RunningApp app;
  std::atomic<uint64_t> calls{0};
  Poller* p = register_on(1, [](void* a) {
    static_cast<std::atomic<uint64_t>*>(a)->fetch_add(1);
    return PollStatus::busy;  // keeps the reactor spinning
  }, &calls);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(wait_until([&] { return calls.load() > 10000; })) << calls.load();

  // Unregistering from the wrong thread or reactor is refused, not a race.
  EXPECT_EQ(unregister_poller(p).code(), Errc::invalid_argument);
  auto wrong = run_on(0, [=] { return unregister_poller(p); });
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->code(), Errc::invalid_argument);

  unregister_on(1, p);
  uint64_t after = calls.load();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(calls.load(), after);
}

TEST(Poller, PollerCanUnregisterItselfAndOthers) {
  RunningApp app;
  struct Ctx {
    Poller* self = nullptr;
    Poller* victim = nullptr;
    int self_calls = 0, victim_calls = 0;
    std::atomic<bool> finished{false};
  };
  auto ctx = std::make_shared<Ctx>();
  ASSERT_TRUE(run_on(1, [ctx] {
                ctx->victim = register_poller([ctx] { return ++ctx->victim_calls, PollStatus::idle; }).value();
                ctx->self = register_poller([ctx] {
                              if (++ctx->self_calls == 3) {
                                EXPECT_TRUE(unregister_poller(ctx->victim).ok());
                                EXPECT_TRUE(unregister_poller(ctx->self).ok());
                                // A second unregister of the same poller is an error, not a double free.
                                EXPECT_EQ(unregister_poller(ctx->self).code(), Errc::invalid_argument);
                                ctx->finished = true;
                              }
                              return PollStatus::idle;
                            }).value();
              }).has_value());
  ASSERT_TRUE(wait_until([&] { return ctx->finished.load(); }));
  std::this_thread::sleep_for(20ms);
  auto counts = run_on(1, [ctx] { return std::pair{ctx->self_calls, ctx->victim_calls}; });
  ASSERT_TRUE(counts.has_value());
  EXPECT_EQ(counts->first, 3);
  EXPECT_GE(counts->second, 2);
  EXPECT_LE(counts->second, 3);
}

// A 10 ms timed poller over 200 ms runs about 20 times. Not a benchmark: the range is wide
// enough for a loaded VM, tight enough to catch a poller run every iteration or never.
TEST(Poller, TimedPollerRunsAtItsPeriod) {
  RunningApp app;
  std::atomic<int> calls{0};
  Poller* p = register_on(1, [](void* a) {
    static_cast<std::atomic<int>*>(a)->fetch_add(1);
    return PollStatus::idle;
  }, &calls, 10000);
  ASSERT_NE(p, nullptr);
  std::this_thread::sleep_for(200ms);
  unregister_on(1, p);
  EXPECT_GE(calls.load(), 8);
  EXPECT_LE(calls.load(), 25);
  // Between its runs the reactor slept rather than spun.
  auto stats = reactor_stats(1);
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->sleeps, 5u);
}

// Measures a reactor's own thread CPU time, from the reactor.
uint64_t reactor_cpu_ns(uint32_t id) {
  auto ns = run_on(id, [] { return clock::thread_cpu_ns(); });
  return ns.value_or(0);
}

// An idle reactor sleeps: over 300 ms idle its threads use a small fraction of one core.
// Functional, not a benchmark: a spinning reactor would be near 100%.
TEST(AdaptivePolling, IdleReactorsUseAlmostNoCpu) {
  RunningApp app;
  std::this_thread::sleep_for(50ms);  // past the 1 ms grace period
  uint64_t cpu0[2], cpu1[2];
  for (uint32_t id = 0; id < 2; ++id) cpu0[id] = reactor_cpu_ns(id);
  const auto wall0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(300ms);
  for (uint32_t id = 0; id < 2; ++id) cpu1[id] = reactor_cpu_ns(id);
  const auto wall_ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - wall0).count());
  for (uint32_t id = 0; id < 2; ++id) {
    double fraction = static_cast<double>(cpu1[id] - cpu0[id]) / wall_ns;
    EXPECT_LT(fraction, 0.20) << "reactor " << id << " used " << fraction * 100 << "% of a core while idle";
    auto stats = reactor_stats(id);
    ASSERT_TRUE(stats.ok());
    EXPECT_GT(stats->sleeps, 0u);
  }
}

TEST(AdaptivePolling, MessageWakesASleepingReactorPromptly) {
  RunningApp app;
  uint64_t sleeps_before = 0;  // sleeps counted when the previous message ran
  for (int round = 0; round < 5; ++round) {
    // A sleep that began after the previous message: the reactor is asleep (or about to be).
    ASSERT_TRUE(wait_until([&] { return reactor_stats(1)->sleeps > sleeps_before; })) << "round " << round;
    std::this_thread::sleep_for(10ms);  // well into its sleep

    struct Probe {
      std::atomic<uint64_t> ran_at{0};
      std::atomic<uint64_t> sleeps{0};
    } probe;
    const uint64_t sent_at = clock::now_ns();
    ASSERT_TRUE(send_message(1, [](void* a) {
                  auto* p = static_cast<Probe*>(a);
                  p->sleeps = reactor_stats(1)->sleeps;
                  p->ran_at = clock::now_ns();
                }, &probe).ok());
    ASSERT_TRUE(wait_until([&] { return probe.ran_at.load() != 0; }, 2000ms));
    EXPECT_LT(probe.ran_at.load() - sent_at, 100'000'000u) << "round " << round;
    sleeps_before = probe.sleeps.load();
  }
}

// Senders write the eventfd only when the reactor sleeps: an awake reactor receives
// thousands of messages without one wakeup.
TEST(AdaptivePolling, AwakeReactorTakesMessagesWithoutWakeups) {
  RunningApp app;
  Poller* spin = register_on(1, [](void*) { return PollStatus::busy; }, nullptr);
  ASSERT_NE(spin, nullptr);
  const uint64_t wakeups = reactor_stats(1)->wakeups;
  std::atomic<int> ran{0};
  for (int i = 0; i < 5000;) {
    if (send_message(1, [](void* a) { static_cast<std::atomic<int>*>(a)->fetch_add(1); }, &ran).ok()) ++i;
  }
  ASSERT_TRUE(wait_until([&] { return ran.load() == 5000; }));
  EXPECT_EQ(reactor_stats(1)->wakeups, wakeups);
  unregister_on(1, spin);
}

// A reactor whose channel has work in flight keeps polling it instead of sleeping.
class SpinningChannel final : public IoChannel {
 public:
  SpinningChannel(IoDevice& d, std::atomic<uint64_t>& polls, std::atomic<bool>& outstanding)
      : IoChannel(d), polls_(polls), outstanding_(outstanding) {}
  int poll() override {
    polls_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  bool has_outstanding() const override { return outstanding_.load(); }

 private:
  std::atomic<uint64_t>& polls_;
  std::atomic<bool>& outstanding_;
};

class SpinningDevice final : public IoDevice {
 public:
  std::atomic<uint64_t> polls{0};
  std::atomic<bool> outstanding{true};
  Result<std::unique_ptr<IoChannel>> create_channel() override {
    return std::unique_ptr<IoChannel>(new SpinningChannel(*this, polls, outstanding));
  }
};

TEST(AdaptivePolling, OutstandingChannelWorkKeepsTheReactorAwake) {
  SpinningDevice device;
  {
    RunningApp app;
    auto ch = run_on(1, [&] { return get_io_channel(device); });
    ASSERT_TRUE(ch.has_value() && ch->ok());
    IoChannel* channel = ch->value();
    std::this_thread::sleep_for(30ms);
    uint64_t sleeps = reactor_stats(1)->sleeps;
    uint64_t polls = device.polls.load();
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(reactor_stats(1)->sleeps, sleeps);
    EXPECT_GT(device.polls.load() - polls, 1000u);  // polled every iteration

    device.outstanding = false;
    EXPECT_TRUE(wait_until([&] { return reactor_stats(1)->sleeps > sleeps; }));
    auto st = run_on(1, [&] { return put_io_channel(channel); });
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(st->ok());
  }
  EXPECT_EQ(device.channel_count(), 0u);
}

}  // namespace
}  // namespace sluice::thread
