// The kicks of a reactor's virtqueues, as an IoChannel (internal to src/target/vhost): one per
// reactor, shared by the queues started there. The queues are polled by their own pollers;
// this channel is how their reactor sleeps on their kick eventfds (an epoll set is its wake
// descriptor), how long it spins for them first (their adaptive windows, poll_window.h,
// instead of the reactor's idle grace), and where the guests' kicks go back on before it
// sleeps: no queue is ever left with kicks suppressed while its reactor sleeps.
#pragma once

#include <cstdint>

#include "base/status.h"

namespace sluice::vhost {

// What a started queue offers its reactor's kick channel.
class KickSource {
 public:
  virtual ~KickSource() = default;
  virtual int kick_fd() const = 0;
  // How long the queue is worth polling once idle.
  virtual uint64_t spin_ns() const = 0;
  // The reactor is about to sleep: turn the guest's kicks back on, then say whether the queue
  // has work it could take now, which the sleep would strand.
  virtual bool ready_after_enabling_kicks() = 0;
};

class KickChannel;

// On the queue's reactor: its kicks wake that reactor from now on.
Result<KickChannel*> join_kick_channel(KickSource* source);
// On the same reactor, outside the reactor's sleep; the last source puts the channel back.
void leave_kick_channel(KickChannel* channel, KickSource* source);

}  // namespace sluice::vhost
