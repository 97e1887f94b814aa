// Rate limits on one bdev (SPDK's bdev QoS), enforced over all of its channels on all
// threads without a lock and without funnelling I/O through one thread.
//
// Each limit is a token bucket shared by the bdev's channels: atomics only. A bucket is
// refilled by whichever channel looks at it first once enough time has passed (the refill
// is claimed with a CAS on its timestamp, so it happens once), and a request is admitted
// when every bucket that applies to it holds a positive balance; it then takes its cost
// from each, possibly going into debt (a 1 MiB write under a 100 KiB balance goes through
// and the bucket pays it back from later refills). So a request is never too big to pass,
// and over any window the admitted amount stays within one burst and one request of the
// limit. The burst is 1/50 s of the rate: 2% of a one-second window, and a thread that
// stalls for up to 20 ms (a noisy machine) loses none of the tokens that accrued meanwhile.
// A request that is not admitted waits in its channel's FIFO and is retried at each poll of
// that channel; waiting channels take turns (Qos::admit), so no channel is starved however
// often the others poll. While requests wait, the channel's thread polls instead of
// sleeping (a limited device is a busy one; the wait is for time, not for an event).
//
// Reads and writes are limited; flush, unmap, write zeroes and reset pass freely.
#pragma once

#include <atomic>
#include <cstdint>

#include "bdev/bdev.h"

namespace sluice::bdev {

class TokenBucket {
 public:
  // `per_second` 0 removes the limit. The balance restarts at zero.
  void set_rate(uint64_t per_second, uint64_t now_ticks, double ticks_per_second);
  uint64_t rate() const { return rate_.load(std::memory_order_relaxed); }
  // Refills for the time passed, then says whether the balance is positive.
  bool ready(uint64_t now_ticks);
  void take(uint64_t cost) { balance_.fetch_sub(static_cast<int64_t>(cost), std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> rate_{0};
  std::atomic<int64_t> balance_{0};
  std::atomic<int64_t> burst_{0};
  std::atomic<uint64_t> last_refill_{0};  // ticks up to which the balance has been credited
  std::atomic<double> ticks_per_token_{0};
};

// A channel's place in line for the limits (one per channel, owned by it).
struct QosTicket {
  uint64_t number = 0;  // 0: not in line
};

class Qos {
 public:
  QosLimits limits() const;
  void set_limits(const QosLimits& limits, uint64_t now_ticks, double ticks_per_second);
  bool enabled() const { return enabled_.load(std::memory_order_acquire); }
  // Admits a request of `bytes` of `type` now (taking its cost) or says it must wait. A
  // channel that must wait takes a ticket, and waiting channels are admitted in ticket
  // order, one request per turn: channels that poll more often than others do not get a
  // larger share. A ticket holder that stops asking (its thread is busy elsewhere, or the
  // channel is gone) loses its turn after kAbsentTurnNs, so it cannot stall the others.
  bool admit(IoType type, uint64_t bytes, uint64_t now_ticks, QosTicket& ticket);

  static constexpr uint64_t kAbsentTurnNs = 2000000;

 private:
  bool take_tokens(IoType type, uint64_t bytes, uint64_t now_ticks);

  std::atomic<bool> enabled_{false};
  TokenBucket rw_ios_, rw_bytes_, r_bytes_, w_bytes_;
  // The line: tickets issued, the last one served, and when the channel whose turn it is
  // last asked.
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> turn_seen_{0};
  std::atomic<uint64_t> absent_ticks_{0};
};

}  // namespace sluice::bdev
