// Ctrl-C during a run: the first SIGINT (or SIGTERM) asks the run to stop and report what it
// did; a second one kills the process the usual way.
#pragma once

#include <atomic>

namespace sluice::perf {

namespace detail {
extern std::atomic<bool> g_stop_requested;
}

// Installs the handlers for the lifetime of the guard, restoring the previous ones after.
class StopSignalGuard {
 public:
  StopSignalGuard();
  ~StopSignalGuard();
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;
};

// Cheap enough for every turn of a job loop: one relaxed load of a line nobody writes.
inline bool stop_requested() { return detail::g_stop_requested.load(std::memory_order_relaxed); }

}  // namespace sluice::perf
