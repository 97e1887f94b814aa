// A poller as its reactor stores it. Callers only ever hold a Poller* handle (thread.h).
#pragma once

#include <cstdint>
#include <string>

#include "thread/thread.h"

namespace sluice::thread {

struct Poller {
  PollFn fn;
  void* arg;
  void (*destroy)(void* arg);  // frees a callable registered through the template form
  uint64_t period_ticks;       // 0: an active poller
  uint64_t next_due;           // timed pollers: TSC tick of the next run
  // Unregistering only marks the poller; the reactor frees it after the loop pass, so a
  // poller can unregister itself or a neighbour while the reactor walks the list.
  bool removed;
  std::string name;

  ~Poller() {
    if (destroy != nullptr) destroy(arg);
  }
};

}  // namespace sluice::thread
