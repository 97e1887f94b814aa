// Helpers for the threading tests: bounded waits and running code on a reactor.
#pragma once

#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

#include "thread/thread.h"
#include "wait.h"

namespace sluice::thread::testing {

using namespace std::chrono_literals;

using sluice::testing::kWait;  // every wait in these tests is bounded
using sluice::testing::wait_until;

// Runs f() on reactor `id` and returns its result, or nullopt if it did not run in time.
template <typename F, typename R = std::invoke_result_t<F&>>
std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> run_on(uint32_t id, F f) {
  using Out = std::conditional_t<std::is_void_v<R>, bool, R>;
  auto promise = std::make_shared<std::promise<Out>>();
  auto future = promise->get_future();
  Status st = send_message(id, [promise, f = std::move(f)]() mutable {
    if constexpr (std::is_void_v<R>) {
      f();
      promise->set_value(true);
    } else {
      promise->set_value(f());
    }
  });
  if (!st.ok()) {
    ADD_FAILURE() << "send_message(" << id << "): " << st.to_string();
    return std::nullopt;
  }
  if (future.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "reactor " << id << " did not run the function within " << kWait.count() << " ms";
    return std::nullopt;
  }
  return future.get();
}

inline AppOptions two_reactors() {
  AppOptions o;
  o.cores = "0,1";  // the CI VM has two cores; pinning failures only warn
  o.shutdown_timeout = 5000ms;
  return o;
}

// An App started for the duration of a test, without signal handling.
class RunningApp {
 public:
  explicit RunningApp(AppOptions options = two_reactors()) : app_(std::move(options)) {
    Status st = app_.start();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  ~RunningApp() {
    Status st = app_.shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  App& app() { return app_; }

 private:
  App app_;
};

}  // namespace sluice::thread::testing
