#include "perf/idle_wait.h"

#include "base/clock.h"
#include "thread/io_channel.h"

namespace sluice::perf {

namespace {

// Bounds one sleep, so that Ctrl-C and the deadline are noticed even if a device stalls.
constexpr uint64_t kMaxSleepNs = 20'000'000;

}  // namespace

std::optional<PollMode> parse_poll_mode(std::string_view name) {
  if (name == "spin") return PollMode::spin;
  if (name == "adaptive") return PollMode::adaptive;
  if (name == "sleep") return PollMode::sleep;
  return std::nullopt;
}

std::string_view poll_mode_name(PollMode mode) {
  switch (mode) {
    case PollMode::spin: return "spin";
    case PollMode::adaptive: return "adaptive";
    case PollMode::sleep: return "sleep";
  }
  return "?";
}

IdleWait::IdleWait(PollMode mode, uint32_t spin_us)
    : mode_(mode),
      spin_ticks_(mode == PollMode::sleep ? 0
                                          : static_cast<uint64_t>(spin_us * clock::ticks_per_second() / 1e6)) {}

void IdleWait::idle_turn(uint64_t now_ticks) {
  if (idle_since_ == 0) {
    idle_since_ = now_ticks;
    if (spin_ticks_ != 0) return;
  }
  if (now_ticks - idle_since_ < spin_ticks_) return;
  // Stays idle_since_ afterwards: a wakeup that brings nothing sleeps again at once.
  if (thread::sleep_on_thread_channels(kMaxSleepNs)) ++sleeps_;
}

}  // namespace sluice::perf
