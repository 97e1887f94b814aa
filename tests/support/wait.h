// A bounded wait: every wait in the tests has a deadline, so a hang fails the test instead of
// stalling ctest.
#pragma once

#include <chrono>
#include <thread>

namespace sluice::testing {

inline constexpr std::chrono::milliseconds kWait{10000};

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace sluice::testing
