// What a `sluice perf` driver does when a turn of its jobs finds nothing to do (--poll):
//  - spin: poll again at once (lowest latency; a whole core per driver, even on a slow device);
//  - adaptive: poll while turns find work, and for --spin-us after the first empty one, then
//    sleep until a channel signals a completion. The default spin is 0: measured on the 2-core
//    VM, any spin took CPU from the kernel workers completing the I/O (loop device, ext4) and
//    cost more CPU per I/O than it saved in latency; a larger one suits devices that complete
//    within a few microseconds;
//  - sleep: sleep as soon as a turn finds nothing, whatever --spin-us says.
// Sleeping needs every channel with requests in flight to be able to wake the thread (uring,
// aio); the null and malloc devices complete inside the poll and never leave a turn empty.
// A reactor applies the policy itself (AppOptions::io_spin); IdleWait is the plain-thread
// driver's version of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::perf {

enum class PollMode : uint8_t { spin, adaptive, sleep };

inline constexpr uint32_t kDefaultSpinUs = 0;

std::optional<PollMode> parse_poll_mode(std::string_view name);
std::string_view poll_mode_name(PollMode mode);

class IdleWait {
 public:
  IdleWait(PollMode mode, uint32_t spin_us);

  // After each turn, with whether it did anything and the turn's TSC time.
  void after_turn(bool progressed, uint64_t now_ticks) {
    if (progressed || mode_ == PollMode::spin) [[likely]] {
      idle_since_ = 0;
      return;
    }
    idle_turn(now_ticks);
  }

  uint64_t sleeps() const { return sleeps_; }

 private:
  void idle_turn(uint64_t now_ticks);

  PollMode mode_;
  uint64_t spin_ticks_;
  uint64_t idle_since_ = 0;  // TSC time of the first empty turn in a row; 0 after progress
  uint64_t sleeps_ = 0;
};

}  // namespace sluice::perf
