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

// A timed poller never runs before its period is up, and the reactor sleeps between runs
// instead of spinning. Asserted on the gaps between runs and on the reactor's counters, not
// on how many runs fit in a wall-clock window (a loaded machine may delay a run, never
// advance it).
TEST(Poller, TimedPollerRunsAtItsPeriod) {
  RunningApp app;
  struct Runs {
    std::atomic<int> count{0};
    std::atomic<uint64_t> last_ns{0};
    std::atomic<uint64_t> shortest_gap_ns{UINT64_MAX};
  } runs;
  const uint64_t sleeps_before = reactor_stats(1)->sleeps;
  Poller* p = register_on(1, [](void* a) {
    auto* r = static_cast<Runs*>(a);
    const uint64_t now = clock::now_ns();
    if (const uint64_t last = r->last_ns.exchange(now); last != 0)
      r->shortest_gap_ns = std::min(r->shortest_gap_ns.load(), now - last);
    r->count.fetch_add(1);
    return PollStatus::idle;
  }, &runs, 10000);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(wait_until([&] { return runs.count.load() >= 6; }, 5000ms));
  unregister_on(1, p);
  EXPECT_GE(runs.shortest_gap_ns.load(), 9'000'000u);  // 10 ms, less the clock's tick slack
  // At least one sleep between each pair of runs.
  EXPECT_GE(reactor_stats(1)->sleeps - sleeps_before, 5u);
}

// True when reactor `id` slept through an idle stretch: from `before` to now, its loop went
// round a few times per sleep at most (a sleep ends, the loop finds nothing, it sleeps again;
// one long sleep is no round at all), where a spinning reactor goes round millions of times.
::testing::AssertionResult slept_through(uint32_t id, const ReactorStats& before) {
  const ReactorStats after = *reactor_stats(id);
  const uint64_t rounds = after.iterations - before.iterations, sleeps = after.sleeps - before.sleeps;
  if (rounds <= 3 * sleeps + 8) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "reactor " << id << " went round its loop " << rounds << " times and slept "
                                       << sleeps << " times";
}

// An idle reactor sleeps rather than spins.
TEST(AdaptivePolling, IdleReactorsSleep) {
  RunningApp app;
  ReactorStats before[2];
  for (uint32_t id = 0; id < 2; ++id) {
    ASSERT_TRUE(wait_until([&] { return reactor_stats(id)->sleeps > 0; }));
    before[id] = *reactor_stats(id);
  }
  std::this_thread::sleep_for(300ms);  // time for a spinning reactor to show itself
  for (uint32_t id = 0; id < 2; ++id) EXPECT_TRUE(slept_through(id, before[id]));
}

// A message to a sleeping reactor wakes it through its eventfd (one wakeup) and runs.
TEST(AdaptivePolling, MessageWakesASleepingReactor) {
  RunningApp app;
  uint64_t sleeps_before = 0;  // sleeps counted when the previous message ran
  for (int round = 0; round < 5; ++round) {
    // A sleep that began after the previous message: the reactor is asleep (or about to be).
    ASSERT_TRUE(wait_until([&] { return reactor_stats(1)->sleeps > sleeps_before; })) << "round " << round;
    const uint64_t wakeups = reactor_stats(1)->wakeups;
    std::atomic<uint64_t> sleeps_seen{0};
    ASSERT_TRUE(send_message(1, [](void* a) {
                  static_cast<std::atomic<uint64_t>*>(a)->store(reactor_stats(1)->sleeps);
                }, &sleeps_seen).ok());
    ASSERT_TRUE(wait_until([&] { return sleeps_seen.load() != 0; }, 5000ms)) << "round " << round;
    // Asleep with nothing to wake it but a sender (no timed pollers): exactly one wakeup.
    EXPECT_TRUE(wait_until([&] { return reactor_stats(1)->wakeups > wakeups; })) << "round " << round;
    EXPECT_EQ(reactor_stats(1)->wakeups, wakeups + 1) << "round " << round;
    sleeps_before = sleeps_seen.load();
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
