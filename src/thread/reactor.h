// Reactor internals: the loop, its message ring, its pollers and its sleep/wake handshake.
#pragma once

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/mpsc_ring.h"
#include "base/spsc_ring.h"  // kCacheLine
#include "thread/thread.h"

namespace sluice::thread {

struct Message {
  MsgFn fn = nullptr;
  void* arg = nullptr;
};

struct ReactorOptions {
  uint32_t id = 0;
  int core = -1;  // -1: do not pin
  size_t ring_size = 4096;
  uint64_t idle_grace_us = 1000;
  uint64_t io_spin_us = 0;  // UINT64_MAX: never sleep with I/O in flight
};

class Reactor {
 public:
  // Creates the reactor's eventfd; the thread starts with start().
  static Result<std::unique_ptr<Reactor>> create(const ReactorOptions& options);
  // Frees (without running) whatever messages were never delivered. The thread must have
  // been joined.
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  uint32_t id() const { return id_; }
  int core() const { return core_; }

  // Spawns the thread with SIGINT and SIGTERM blocked, so that they reach only the thread
  // that waits for them (App::run).
  Status start();
  // Any thread: the loop ends after its current iteration, even if asleep.
  void request_stop();
  // Waits until the thread has exited, up to `deadline_ns` (CLOCK_MONOTONIC). On timeout
  // the thread is detached and this object must be leaked, since the thread may still use it.
  bool join(uint64_t deadline_ns);
  // How many IoChannels the thread still owned when it exited (a leak if non-zero).
  size_t leaked_channels() const { return leaked_channels_; }

  // Any thread.
  Status send(MsgFn fn, void* arg) {
    if (closed_.load(std::memory_order_acquire)) return Status(Errc::aborted, "reactor stopped");
    // Short literals: they fit std::string's inline buffer, so back-pressure never allocates.
    if (!ring_.push(Message{fn, arg})) return Status(Errc::busy, "ring full");
    wake();
    return Status::Ok();
  }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  ReactorStats stats() const;

  // The reactor's own thread only.
  Poller* add_poller(PollFn fn, void* arg, void (*destroy)(void*), uint64_t period_us, std::string_view name);
  void remove_poller(Poller* poller);
  bool owns(const Poller* poller) const;

 private:
  Reactor(const ReactorOptions& options, int event_fd);

  void main();
  bool iterate();
  bool run_timed_pollers(uint64_t now);
  void reap_pollers();
  void maybe_sleep();
  // `spin_ns` (thread_channels_idle's: the idle grace, or less if the channels waiting for
  // peers ask for less) in ticks.
  uint64_t idle_spin_ticks(uint64_t spin_ns) const;
  // `io`: work is in flight (counted in io_sleeps).
  bool sleep_until_event(uint64_t now, bool io);
  void drain_at_exit();
  void free_pollers_at_exit();

  // The sender's half of the sleep handshake (see sleep_until_event()). Every write to
  // sleeping_, on both sides, is a seq_cst read-modify-write: RMWs on one atomic are totally
  // ordered and each reads the latest value, so either the sleeper's exchange(true) comes
  // first and this one reads true and writes the eventfd, or this one comes first and
  // synchronizes with it, making the new message (or stop_) visible to the sleeper's check.
  // All-RMW also keeps a sender's release sequence unbroken by the reactor's own clears. Not
  // a fence: GCC's TSan cannot check fences. Only the sender that flips true to false writes
  // the eventfd, so an awake reactor costs its senders no syscall.
  void wake() {
    if (sleeping_.exchange(false, std::memory_order_seq_cst)) write_eventfd();
  }
  void write_eventfd();

  static void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    // Only this thread writes the counters: a plain load and store, no locked instruction.
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // Read-mostly by senders.
  const uint32_t id_;
  const int core_;
  const int event_fd_;
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> wakeups_{0};
  MpscRing<Message> ring_;

  // Alone on its line: every send writes it.
  alignas(kCacheLine) std::atomic<bool> sleeping_{false};

  // The loop's own state. stop_ lives here, not by sleeping_, because the loop reads it
  // every iteration and it is written once.
  alignas(kCacheLine) std::atomic<bool> stop_{false};
  std::vector<Poller*> active_;
  std::vector<Poller*> timed_;
  uint64_t next_timed_due_ = UINT64_MAX;
  bool reap_pending_ = false;
  uint64_t idle_since_ = 0;  // TSC tick the reactor went idle; 0 while busy
  uint64_t grace_ns_;
  uint64_t grace_ticks_;
  uint64_t io_spin_ticks_;   // UINT64_MAX: never sleep with I/O in flight
  uint64_t backdate_ticks_;  // see maybe_sleep()
  std::vector<pollfd> sleep_fds_;  // the eventfd and the armed channels' wake fds; reused
  double ns_per_tick_;
  std::atomic<uint64_t> iterations_{0};
  std::atomic<uint64_t> busy_iterations_{0};
  std::atomic<uint64_t> messages_{0};
  std::atomic<uint64_t> sleeps_{0};
  std::atomic<uint64_t> io_sleeps_{0};

  size_t leaked_channels_ = 0;  // written before exited_, read after join
  std::thread thread_;
  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  bool exited_ = false;
};

}  // namespace sluice::thread
