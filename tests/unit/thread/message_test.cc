// Messages between reactors and from foreign threads; broadcasts; call_and_wait and
// destroy_later.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

using namespace testing;

TEST(Reactor, CurrentReactorIsNullOnAForeignThread) {
  EXPECT_EQ(current_reactor(), nullptr);
  RunningApp app;
  EXPECT_EQ(current_reactor(), nullptr);
  EXPECT_EQ(reactor_count(), 2u);
  for (uint32_t id = 0; id < 2; ++id) {
    auto seen = run_on(id, [] {
      Reactor* r = current_reactor();
      return r == nullptr ? std::pair{-1, -1} : std::pair{static_cast<int>(reactor_id(r)), reactor_core(r)};
    });
    ASSERT_TRUE(seen.has_value());
    EXPECT_EQ(seen->first, static_cast<int>(id));
    EXPECT_EQ(seen->second, static_cast<int>(id));  // cores "0,1"
  }
}

TEST(Reactor, NoReactorsWithoutAnApp) {
  EXPECT_EQ(reactor_count(), 0u);
  Status st = send_message(0, [](void*) {}, nullptr);
  EXPECT_EQ(st.code(), Errc::not_found);
  EXPECT_EQ(reactor_stats(0).status().code(), Errc::not_found);
}

TEST(Reactor, SendToUnknownReactorIsNotFound) {
  RunningApp app;
  Status st = send_message(7, [](void*) {}, nullptr);
  EXPECT_EQ(st.code(), Errc::not_found) << st.to_string();
}

// Per sender, messages run in the order they were sent: from a reactor to another, and from
// a foreign thread to both.
TEST(Reactor, MessagesArriveInOrder) {
  RunningApp app;
  constexpr uint64_t kN = 20000;
  struct Sink {
    uint64_t next_from_reactor = 0;  // touched only on reactor 1
    uint64_t next_from_foreign = 0;  // touched only on reactor 1
    std::atomic<uint64_t> received{0};
    std::atomic<bool> in_order{true};
  } sink;
  struct Msg {
    Sink* sink;
    uint64_t seq;
    bool from_reactor;
  };
  static auto deliver = [](void* arg) {
    auto* m = static_cast<Msg*>(arg);
    uint64_t& next = m->from_reactor ? m->sink->next_from_reactor : m->sink->next_from_foreign;
    if (m->seq != next || reactor_id(current_reactor()) != 1) m->sink->in_order.store(false);
    next = m->seq + 1;
    m->sink->received.fetch_add(1);
  };
  std::vector<Msg> from_reactor(kN), from_foreign(kN);
  for (uint64_t i = 0; i < kN; ++i) {
    from_reactor[i] = {&sink, i, true};
    from_foreign[i] = {&sink, i, false};
  }

  // Reactor 0 sends its share from one message, retrying when reactor 1's ring is full.
  ASSERT_TRUE(send_message(0, [&] {
                for (uint64_t i = 0; i < kN;) {
                  Status st = send_message(1, +deliver, &from_reactor[i]);
                  if (st.ok()) ++i;
                  else ASSERT_EQ(st.code(), Errc::busy);
                }
              }).ok());
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  for (uint64_t i = 0; i < kN && std::chrono::steady_clock::now() < deadline;) {
    Status st = send_message(1, +deliver, &from_foreign[i]);
    if (st.ok()) ++i;
    else std::this_thread::yield();
  }
  ASSERT_TRUE(wait_until([&] { return sink.received.load() == 2 * kN; })) << sink.received.load();
  EXPECT_TRUE(sink.in_order.load());
}

// Several foreign threads and a reactor hammer one reactor. The handler's state is a plain
// (non-atomic) struct: TSan proves that only reactor 0 ever touches it.
TEST(Reactor, ManyProducersToOneReactor) {
  AppOptions options = two_reactors();
  options.message_ring_size = 256;  // small, so that producers meet back-pressure
  RunningApp app(options);
  constexpr int kForeign = 3;
  constexpr int kProducers = kForeign + 1;
  constexpr uint64_t kPer = 30000;
  struct State {
    uint64_t next[kProducers] = {};
    uint64_t total = 0;
    bool ordered = true;
  };
  static State state;
  state = State{};
  static auto deliver = [](void* arg) {
    auto v = reinterpret_cast<uintptr_t>(arg);
    auto p = static_cast<int>(v >> 32);
    if ((v & 0xffffffffu) != state.next[p]) state.ordered = false;
    state.next[p] = (v & 0xffffffffu) + 1;
    ++state.total;
  };
  auto produce = [](int p) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    for (uint64_t i = 0; i < kPer && std::chrono::steady_clock::now() < deadline;) {
      void* arg = reinterpret_cast<void*>((static_cast<uintptr_t>(p) << 32) | i);
      Status st = send_message(0, +deliver, arg);
      if (st.ok()) ++i;
      else if (st.code() == Errc::busy) std::this_thread::yield();
      else ADD_FAILURE() << st.to_string();
    }
  };
  std::atomic<bool> reactor_done{false};
  ASSERT_TRUE(send_message(1, [&] {
                produce(kForeign);
                reactor_done = true;
              }).ok());
  std::vector<std::thread> threads;
  for (int p = 0; p < kForeign; ++p) threads.emplace_back(produce, p);
  for (auto& t : threads) t.join();
  ASSERT_TRUE(wait_until([&] { return reactor_done.load(); }));

  auto snapshot = run_on(0, [] { return state; });
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->total, kProducers * kPer);
  EXPECT_TRUE(snapshot->ordered);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(snapshot->next[p], kPer) << "producer " << p;
}

// The callable form from several threads: each closure is delivered once and freed (ASan).
TEST(Reactor, CallableMessagesFromSeveralThreads) {
  RunningApp app;
  std::atomic<int> ran{0};
  constexpr int kThreads = 3, kPer = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer;) {
        auto payload = std::make_unique<int>(i);
        Status st = send_message(static_cast<uint32_t>((t + i) % 2), [&ran, payload = std::move(payload)] {
          ran.fetch_add(1);
        });
        if (st.ok()) ++i;
        else std::this_thread::yield();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(wait_until([&] { return ran.load() == kThreads * kPer; })) << ran.load();
}

// call_and_wait: fn's Status comes back; a reactor that does not answer in time is
// Errc::aborted (fn still runs later: it holds only what it owns).
TEST(Reactor, CallAndWaitReturnsTheStatusOrTimesOut) {
  RunningApp app;
  auto ran_on = std::make_shared<std::atomic<int>>(-1);
  Status st = call_and_wait(
      1,
      [ran_on] {
        ran_on->store(static_cast<int>(reactor_id(current_reactor())));
        return Status(Errc::exists, "from the reactor");
      },
      std::chrono::milliseconds(5000));
  EXPECT_EQ(st.code(), Errc::exists);
  EXPECT_EQ(ran_on->load(), 1);
  // Reactor 0 busy for 300 ms: a 20 ms wait gives up.
  ASSERT_TRUE(send_message(0, [] { std::this_thread::sleep_for(300ms); }).ok());
  auto late = std::make_shared<std::atomic<bool>>(false);
  st = call_and_wait(
      0,
      [late] {
        late->store(true);
        return Status::Ok();
      },
      std::chrono::milliseconds(20));
  EXPECT_EQ(st.code(), Errc::aborted);
  EXPECT_TRUE(wait_until([&] { return late->load(); }));
  EXPECT_EQ(call_and_wait(
                7, [] { return Status::Ok(); }, std::chrono::milliseconds(100))
                .code(),
            Errc::not_found);
}

// destroy_later: runs after the callback that asked returns, in order, one message for all.
TEST(Reactor, DestroyLaterRunsAfterTheCallerReturns) {
  RunningApp app;
  struct Victim {
    std::vector<int>* log;
    int id;
  };
  std::vector<int> log;  // touched on reactor 0 only
  auto done = run_on(0, [&] {
    for (int i = 0; i < 3; ++i)
      destroy_later(
          [](void* v) {
            auto* victim = static_cast<Victim*>(v);
            victim->log->push_back(victim->id);
            delete victim;
          },
          new Victim{&log, i});
    log.push_back(-1);  // still in the caller: nothing destroyed yet
  });
  ASSERT_TRUE(done);
  std::vector<int> seen;
  EXPECT_TRUE(wait_until([&] {
    run_on(0, [&] { seen = log; });
    return seen.size() == 4;
  }));
  EXPECT_EQ(seen, (std::vector<int>{-1, 0, 1, 2}));
}

// A full ring is Errc::busy at once, never a block.
TEST(Reactor, FullRingIsBusyNotABlock) {
  AppOptions options = two_reactors();
  options.message_ring_size = 16;
  RunningApp app(options);
  std::atomic<bool> release{false}, blocked{false};
  ASSERT_TRUE(send_message(1, [&] {
                blocked = true;
                wait_until([&] { return release.load(); });
              }).ok());
  ASSERT_TRUE(wait_until([&] { return blocked.load(); }));

  std::atomic<int> ran{0};
  int accepted = 0;
  Status st;
  for (int i = 0; i < 100; ++i) {
    st = send_message(1, [](void* a) { static_cast<std::atomic<int>*>(a)->fetch_add(1); }, &ran);
    if (!st.ok()) break;
    ++accepted;
  }
  EXPECT_EQ(st.code(), Errc::busy) << st.to_string();
  EXPECT_EQ(accepted, 16);
  release = true;
  EXPECT_TRUE(wait_until([&] { return ran.load() == accepted; }));
}

// send_message_retrying through a full ring: from a reactor the rest wait in a poller, from a
// foreign thread the caller retries; none is lost, none runs twice.
TEST(Reactor, RetryingSendThroughAFullRingLosesNothing) {
  AppOptions options = two_reactors();
  options.message_ring_size = 16;
  RunningApp app(options);
  std::atomic<bool> release{false}, blocked{false};
  ASSERT_TRUE(send_message(1, [&] {
                blocked = true;
                wait_until([&] { return release.load(); });
              }).ok());
  ASSERT_TRUE(wait_until([&] { return blocked.load(); }));

  constexpr int kFromReactor = 100, kFromHere = 20;
  std::atomic<int> ran{0}, sent{0};
  const auto count = [](void* a) { static_cast<std::atomic<int>*>(a)->fetch_add(1); };
  ASSERT_TRUE(send_message(0, [&] {
                for (int i = 0; i < kFromReactor; ++i) EXPECT_TRUE(send_message_retrying(1, count, &ran).ok());
                sent = kFromReactor;  // the reactor went on: the sends did not wait
              }).ok());
  ASSERT_TRUE(wait_until([&] { return sent.load() == kFromReactor; }));
  EXPECT_EQ(ran.load(), 0);  // reactor 1 is still blocked
  // This thread's sends wait (up to a second each) for room: reactor 1 runs again meanwhile.
  std::thread unblock([&] {
    std::this_thread::sleep_for(50ms);
    release = true;
  });
  for (int i = 0; i < kFromHere; ++i) EXPECT_TRUE(send_message_retrying(1, count, &ran).ok());
  unblock.join();
  EXPECT_TRUE(wait_until([&] { return ran.load() == kFromReactor + kFromHere; })) << ran.load();
  std::this_thread::sleep_for(20ms);  // a message run twice would show up here
  EXPECT_EQ(ran.load(), kFromReactor + kFromHere);
  EXPECT_EQ(send_message_retrying(7, count, &ran).code(), Errc::not_found);
}

// spdk_for_each_thread: fn once on every reactor, in id order, then done once on the sender's
// reactor.
TEST(Broadcast, RunsOnEveryReactorThenDoneOnTheSender) {
  RunningApp app;
  struct Ctx {
    std::vector<int> visited;  // handed from reactor to reactor: no lock needed
    std::atomic<int> done_calls{0};
    std::atomic<int> done_reactor{-1};
    std::atomic<size_t> visited_at_done{0};
  } ctx;
  for (uint32_t origin = 0; origin < 2; ++origin) {
    ctx.visited.clear();
    ctx.done_calls = 0;
    ASSERT_TRUE(send_message(origin, [&] {
                  Status st = for_each_reactor(
                      [](void* a) {
                        static_cast<Ctx*>(a)->visited.push_back(static_cast<int>(reactor_id(current_reactor())));
                      },
                      &ctx,
                      [](void* a) {
                        auto* c = static_cast<Ctx*>(a);
                        c->visited_at_done = c->visited.size();
                        c->done_reactor = static_cast<int>(reactor_id(current_reactor()));
                        c->done_calls.fetch_add(1);
                      },
                      &ctx);
                  EXPECT_TRUE(st.ok()) << st.to_string();
                }).ok());
    ASSERT_TRUE(wait_until([&] { return ctx.done_calls.load() == 1; }));
    std::this_thread::sleep_for(20ms);  // a second done call would show up here
    EXPECT_EQ(ctx.done_calls.load(), 1);
    EXPECT_EQ(ctx.done_reactor.load(), static_cast<int>(origin));
    EXPECT_EQ(ctx.visited_at_done.load(), 2u);
    EXPECT_EQ(ctx.visited, (std::vector<int>{0, 1}));
  }
}

TEST(Broadcast, FromAForeignThreadDoneRunsOnTheLastReactor) {
  RunningApp app;
  std::atomic<int> fn_calls{0}, done_reactor{-1}, done_calls{0};
  Status st = for_each_reactor([&] { fn_calls.fetch_add(1); },
                               [&] {
                                 done_reactor = static_cast<int>(reactor_id(current_reactor()));
                                 done_calls.fetch_add(1);
                               });
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_TRUE(wait_until([&] { return done_calls.load() == 1; }));
  EXPECT_EQ(fn_calls.load(), 2);
  EXPECT_EQ(done_reactor.load(), 1);
}

// Many broadcasts at once through small rings: hops that meet a full ring are retried, not
// lost, and every broadcast completes exactly once.
TEST(Broadcast, ManyConcurrentBroadcastsAllComplete) {
  AppOptions options = two_reactors();
  options.message_ring_size = 8;
  RunningApp app(options);
  constexpr int kPerSource = 200;
  std::atomic<int> fn_calls{0}, done_calls{0};
  auto launch = [&] {
    for (int i = 0; i < kPerSource;) {
      Status st = for_each_reactor([&] { fn_calls.fetch_add(1); }, [&] { done_calls.fetch_add(1); });
      if (st.ok()) ++i;
      else if (st.code() == Errc::busy) std::this_thread::yield();
      else ADD_FAILURE() << st.to_string();
    }
  };
  std::atomic<bool> launched_from_reactor{false};
  ASSERT_TRUE(send_message(1, [&] {
                launch();
                launched_from_reactor = true;
              }).ok());
  launch();
  ASSERT_TRUE(wait_until([&] { return launched_from_reactor.load(); }));
  ASSERT_TRUE(wait_until([&] { return done_calls.load() == 2 * kPerSource; })) << done_calls.load();
  EXPECT_EQ(fn_calls.load(), 2 * 2 * kPerSource);
}

}  // namespace
}  // namespace sluice::thread
