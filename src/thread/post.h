// Control-path delivery that a full ring must not lose: shutdown steps, broadcast hops.
#pragma once

#include "thread/task.h"

namespace sluice::thread {

class Reactor;

// Sends `task` to `target`. If the ring is full: on a reactor, a poller of the calling
// reactor retries each iteration (the caller does not wait); on a foreign thread, the caller
// retries for up to a second. The task is dropped (freed, unrun, with a log line) only if
// the target has stopped or the foreign-thread retries run out.
void post(Reactor& target, Task task);

}  // namespace sluice::thread
