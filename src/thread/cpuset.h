// Pinning threads to cores. parse_core_list() is public (thread.h).
#pragma once

#include "base/status.h"

namespace sluice::thread {

// Pins the calling thread to `core`. Fails when the core is outside the process's allowed
// set (e.g. under taskset or a cgroup cpuset); callers log that and run unpinned.
Status pin_current_thread(int core);

}  // namespace sluice::thread
