// A started virtqueue served on a reactor (internal to src/target/vhost): its poller, its kick
// watch, the inflight region's bookkeeping, interrupts (coalesced or not) and the stop that
// waits for the requests in flight. Each device's queue derives from it and turns descriptor
// chains into work (blk_queue.h, scsi_queue.h); the start and stop steps travel between the
// session's reactor and the queue's by message.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "target/vhost/device.h"
#include "target/vhost/kick_channel.h"
#include "target/vhost/poll_window.h"
#include "target/vhost/vhost.h"  // Coalescing
#include "thread/thread.h"

namespace sluice::vhost {

// Runs fn(arg) on `reactor` by message, a full ring retried (a queue's start and stop steps
// must not be lost); logs the step if the reactor is gone.
void send_step(uint32_t reactor, thread::MsgFn fn, void* arg);

// Interrupt coalescing's settings, shared by a device's queues; any thread writes them.
struct CoalescingKnobs {
  std::atomic<uint32_t> delay_us{0};
  std::atomic<uint32_t> threshold{0};
  void set(const Coalescing& c) {
    delay_us.store(c.delay_base_us, std::memory_order_relaxed);
    threshold.store(c.iops_threshold, std::memory_order_relaxed);
  }
};

// A queue's counters, kept across its restarts; written by the queue's reactor only, read
// racily by anyone, by design.
struct QueueCounters {
  std::atomic<uint64_t> requests{0}, errors{0}, bad_chains{0}, unaligned{0};
  static void bump(std::atomic<uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
};

// The counters of `n` queues summed.
BlkStats sum_counters(const QueueCounters* counters, uint32_t n);

class RingQueue : private KickSource {
 public:
  ~RingQueue() override = default;

  // On the session's reactor: starts the queue on `reactor` (here or by message).
  Status start(const QueueContext& ctx, uint32_t reactor);
  // On the session's reactor: done() runs there once the queue stopped and nothing is in flight.
  void stop(std::function<void()> done);
  bool in_use() const { return in_use_; }
  uint32_t index() const { return ctx.index; }

 protected:
  RingQueue(std::string log_name, const CoalescingKnobs* coalescing)
      : log_name_(std::move(log_name)), coalescing_(coalescing) {}

  // ---- What a device's queue provides, on the queue's reactor ----
  // Before the poller starts (a bdev channel, say) and once the last request finished.
  virtual Status acquire() { return Status::Ok(); }
  virtual void release() {}
  // Whether a new request can be taken now (the pool has a free slot).
  virtual bool has_room() const = 0;
  // Serves the chain at `head`; every head taken ends in return_used() (at once or later).
  virtual void start_request(uint16_t head) = 0;
  // Per poll, before the ring is read; true if it did something.
  virtual bool poll_extra() { return false; }
  // The poller is gone: requests that waited for it must finish some other way.
  virtual void on_stop() {}

  // Walks the chain at `head` into `segs`; a chain the walker refuses is counted in
  // `counters` (and logged, the first few times) and false returned: nothing of it can be
  // trusted, not even where its status or response goes.
  bool walk(uint16_t head, std::span<Segment> segs, Chain* chain, QueueCounters& counters);
  // Returns a chain to the guest: inflight marks, used ring, pool accounting.
  void return_used(uint16_t head, uint32_t written);
  const std::string& log_name() const { return log_name_; }

  QueueContext ctx;
  uint32_t reactor = 0;  // where it runs
  uint32_t home = 0;     // the session's reactor, where on_stopped runs
  uint32_t in_flight = 0;
  bool stopping = false;

 private:
  Status run_start();
  void begin_stop();
  // Fills `resubmit_` from the inflight region and moves the ring past those heads.
  void recover_inflight();
  static thread::PollStatus poll(void* arg);
  // Once stopping and nothing is in flight: finishes the stop.
  void maybe_finish_stop();
  void take(uint16_t head);
  void signal_if_needed();
  // Whether an interrupt may go now or is held back for more completions to share it.
  bool interrupt_due();
  // Signals what completed, releases, runs on_stopped on the session's reactor.
  void finish_stop();
  // KickSource: what the reactor's kick channel asks before it sleeps.
  int kick_fd() const override { return ctx.kick_fd; }
  uint64_t spin_ns() const override { return window_.spin_ns(); }
  bool ready_after_enabling_kicks() override;

  std::string log_name_;
  const CoalescingKnobs* coalescing_;
  bool in_use_ = false;          // the session's reactor's: from start until on_stopped ran
  bool stop_requested_ = false;  // the session's reactor's
  thread::Poller* poller_ = nullptr;
  // Null: the queue is not woken by kicks (the front end gave none, or they could not be
  // watched), so its poller keeps the reactor awake.
  KickChannel* kicks_ = nullptr;
  PollWindow window_{0};
  bool completed_ = false;  // used entries added since the last signal check
  // Coalescing: the completion rate over the last window, and when the oldest interrupt
  // still held back became due (0: none held).
  uint64_t window_start_ns_ = 0;
  uint64_t window_completions_ = 0;
  bool above_threshold_ = false;
  uint64_t held_since_ns_ = 0;
  bool finish_scheduled_ = false;  // the queue's reactor's
  bool finished_ = false;          // finish_stop ran
  std::function<void()> on_stopped_;
  // Heads a previous back end took and never returned (inflight region), oldest first;
  // served before anything new from the ring.
  std::vector<uint16_t> resubmit_;
  size_t resubmitted_ = 0;
};

// A device's stop_queue(): stops queue `index` if it ever started, else done() at once.
template <class Q>
void stop_queue_in(std::vector<std::unique_ptr<Q>>& queues, uint32_t index, std::function<void()> done) {
  Q* q = index < queues.size() ? queues[index].get() : nullptr;
  if (q == nullptr) {
    done();
    return;
  }
  q->stop(std::move(done));
}

}  // namespace sluice::vhost
