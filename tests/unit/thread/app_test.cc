// The application lifecycle: start, stop, signals, orderly shutdown, leak reports, timeouts.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

using namespace testing;

// Bounds App::run(): if the test's own stop never comes, stop it and fail. Its thread starts
// with SIGINT and SIGTERM blocked, as App::run() requires of every thread but its caller.
class Watchdog {
 public:
  explicit Watchdog(App& app) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    thread_ = std::thread([this, &app] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, kWait, [this] { return cancelled_; })) {
        fired_ = true;
        app.stop();
      }
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
    thread_.join();
    EXPECT_FALSE(fired_) << "App::run() had to be stopped by the watchdog";
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  bool fired_ = false;
  std::thread thread_;
};

class TestChannel final : public IoChannel {
 public:
  explicit TestChannel(IoDevice& d) : IoChannel(d) {}
  int poll() override { return 0; }
};

class TestDevice final : public IoDevice {
 public:
  Result<std::unique_ptr<IoChannel>> create_channel() override {
    return std::unique_ptr<IoChannel>(new TestChannel(*this));
  }
};

// Application state that holds one channel per reactor, as a bdev user would.
struct ChannelUser {
  TestDevice device;
  IoChannel* channels[2] = {};

  // On every reactor, then `then` on the calling reactor.
  void acquire(Task then) {
    Status st = for_each_reactor([this] { channels[reactor_id(current_reactor())] = get_io_channel(device).value(); },
                                 std::move(then));
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  ShutdownCallback releaser(std::atomic<int>* ran_on = nullptr) {
    return [this, ran_on](std::function<void()> done) {
      if (ran_on != nullptr) *ran_on = static_cast<int>(reactor_id(current_reactor()));
      Status st = for_each_reactor(
          [this] {
            auto id = reactor_id(current_reactor());
            EXPECT_TRUE(put_io_channel(channels[id]).ok());
            channels[id] = nullptr;
          },
          [done] { done(); });
      EXPECT_TRUE(st.ok()) << st.to_string();
    };
  }
};

TEST(App, StartRunsOnTheFirstReactorAndStopEndsRun) {
  App app(two_reactors());
  std::atomic<int> started_on{-1};
  Status st;
  {
    Watchdog dog(app);
    st = app.run([&] {
      started_on = static_cast<int>(reactor_id(current_reactor()));
      EXPECT_EQ(reactor_count(), 2u);
      app.stop();
    });
  }
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(started_on.load(), 0);
  EXPECT_EQ(reactor_count(), 0u);
}

TEST(App, StopFromAForeignThread) {
  App app(two_reactors());
  std::atomic<bool> started{false};
  std::thread stopper([&] {
    wait_until([&] { return started.load(); });
    app.stop();
  });
  Status st;
  {
    Watchdog dog(app);
    st = app.run([&] { started = true; });
  }
  stopper.join();
  EXPECT_TRUE(st.ok()) << st.to_string();
}

TEST(App, ShutdownCallbacksRunLastFirstOnTheFirstReactorAndReleaseChannels) {
  App app(two_reactors());
  ChannelUser user;
  std::mutex mu;
  std::vector<std::string> order;
  auto record = [&](const char* what) {
    std::lock_guard lock(mu);
    order.push_back(what);
  };
  std::atomic<int> releaser_ran_on{-1};
  ShutdownCallback release = user.releaser(&releaser_ran_on);
  app.on_shutdown([&](std::function<void()> done) {
    record("first registered");
    release(std::move(done));
  });
  std::thread finisher;
  app.on_shutdown([&](std::function<void()> done) {
    record("second registered");
    finisher = std::thread([done] { done(); });  // done may come from any thread
  });
  Status st;
  {
    Watchdog dog(app);
    st = app.run([&] { user.acquire([&] { app.stop(); }); });
  }
  finisher.join();
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(order, (std::vector<std::string>{"second registered", "first registered"}));
  EXPECT_EQ(releaser_ran_on.load(), 0);
  EXPECT_EQ(user.device.channel_count(), 0u);
}

TEST(App, LeakedChannelFailsTheShutdown) {
  TestDevice device;
  IoChannel* leaked = nullptr;
  {
    App app(two_reactors());
    ASSERT_TRUE(app.start().ok());
    auto ch = run_on(1, [&] { return get_io_channel(device); });
    ASSERT_TRUE(ch.has_value() && ch->ok());
    leaked = ch->value();
    Status st = app.shutdown();
    EXPECT_EQ(st.code(), Errc::busy) << st.to_string();
    EXPECT_NE(st.message().find("reactor 1 (core 1) exited owning 1 io channel"), std::string::npos) << st.message();
  }
  EXPECT_EQ(device.channel_count(), 1u);
  delete leaked;  // its owner is gone; free it so that the device can go
}

TEST(App, ShutdownIsBoundedWhenACallbackNeverFinishes) {
  auto held = std::make_shared<std::function<void()>>();
  std::mutex mu;
  {
    AppOptions options = two_reactors();
    options.shutdown_timeout = 200ms;
    App app(options);
    app.on_shutdown([&, held](std::function<void()> done) {
      std::lock_guard lock(mu);
      *held = std::move(done);  // and never call it
    });
    ASSERT_TRUE(app.start().ok());
    const auto t0 = std::chrono::steady_clock::now();
    Status st = app.shutdown();
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(st.code(), Errc::aborted) << st.to_string();
    EXPECT_NE(st.message().find("did not finish within 200 ms"), std::string::npos) << st.message();
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 3s);
  }
  // Finishing after the timeout, even after the App is gone, is harmless.
  std::lock_guard lock(mu);
  ASSERT_TRUE(*held);
  (*held)();
}

TEST(App, StopWithAStatusIsWhatRunReturns) {
  App app(two_reactors());
  Status st;
  {
    Watchdog dog(app);
    st = app.run([&] { app.stop(Status(Errc::not_found, "no such bdev")); });
  }
  EXPECT_EQ(st.code(), Errc::not_found);
  EXPECT_EQ(st.message(), "no such bdev");
}

TEST(App, StopBeforeRunMakesRunReturnAtOnce) {
  App app(two_reactors());
  app.stop();
  std::atomic<bool> started{false};
  Status st;
  {
    Watchdog dog(app);
    st = app.run([&] { started = true; });
  }
  EXPECT_TRUE(st.ok()) << st.to_string();
}

TEST(App, BadCoreListFailsToStart) {
  App app(AppOptions{.cores = "0-"});
  Status st = app.run([] { ADD_FAILURE() << "started"; });
  EXPECT_EQ(st.code(), Errc::invalid_argument);
  EXPECT_NE(st.message().find("invalid core list \"0-\""), std::string::npos) << st.message();
  EXPECT_EQ(reactor_count(), 0u);
}

TEST(App, UnavailableCoreWarnsAndRunsUnpinned) {
  AppOptions options;
  options.cores = "1023";  // valid syntax, but not a core this machine has
  App app(options);
  ASSERT_TRUE(app.start().ok());
  auto core = run_on(0, [] { return reactor_core(current_reactor()); });
  ASSERT_TRUE(core.has_value());
  EXPECT_EQ(*core, 1023);
  EXPECT_TRUE(app.shutdown().ok());
}

TEST(App, OneAppAtATime) {
  RunningApp first;
  App second(two_reactors());
  EXPECT_EQ(second.start().code(), Errc::busy);
  EXPECT_EQ(reactor_count(), 2u);  // the first App's reactors are untouched
}

TEST(App, CanRunAgainAfterShutdown) {
  App app(two_reactors());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(app.start().ok());
    EXPECT_EQ(app.start().code(), Errc::busy);
    auto ran = run_on(1, [] { return true; });
    EXPECT_TRUE(ran.has_value());
    EXPECT_TRUE(app.shutdown().ok());
  }
}

TEST(App, BlockingCallsAreRefusedOnAReactor) {
  RunningApp running;
  App other(two_reactors());
  auto st = run_on(0, [&] { return std::pair{other.run({}).code(), running.app().shutdown().code()}; });
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->first, Errc::invalid_argument);
  EXPECT_EQ(st->second, Errc::invalid_argument);
}

// SIGTERM to the process while run() blocks in this (the main) thread. The signal comes from
// a thread that the start function creates: it inherits a reactor's mask, so SIGTERM is
// blocked in every thread of the process and waits for run()'s signalfd.
TEST(AppSignals, SigtermShutsDownInOrder) {
  App app(two_reactors());
  ChannelUser user;
  std::atomic<bool> callback_ran{false};
  app.on_shutdown([&](std::function<void()> done) {
    callback_ran = true;
    done();
  });
  app.on_shutdown(user.releaser());
  std::thread killer;
  Status st;
  {
    Watchdog dog(app);
    st = app.run([&] {
      user.acquire([&] { killer = std::thread([] { kill(getpid(), SIGTERM); }); });
    });
  }
  killer.join();
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(callback_ran.load());
  EXPECT_EQ(user.device.channel_count(), 0u);
}

// The same for SIGINT, in a child process so that nothing else in the test binary can
// interfere, and with the default disposition: a signal that slipped through would kill it.
[[noreturn]] void sigint_child() {
  alarm(20);  // a hang kills the child instead of the test run
  signal(SIGINT, SIG_DFL);
  App app(two_reactors());
  ChannelUser user;
  app.on_shutdown(user.releaser());
  Status st = app.run([&] { user.acquire([] { kill(getpid(), SIGINT); }); });
  bool ok = st.ok() && user.device.channel_count() == 0;
  std::fprintf(stderr, "run: %s, channels left: %zu\n", st.to_string().c_str(), user.device.channel_count());
  std::exit(ok ? 0 : 1);
}

TEST(AppSignals, SigintShutsDownInAChildProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(sigint_child(), ::testing::ExitedWithCode(0), "SIGINT received, shutting down.*run: ok, channels left: 0");
}

}  // namespace
}  // namespace sluice::thread
