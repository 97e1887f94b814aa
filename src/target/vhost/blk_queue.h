// One started virtio-blk queue (internal to src/target/vhost): its request pool, its poller
// and its channel to the bdev, on the reactor that started it. blk_device.cc starts and
// stops it; blk_request.cc turns a descriptor chain into bdev I/O and back.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "bdev/bdev.h"
#include "net/net.h"
#include "target/vhost/blk_device.h"
#include "thread/thread.h"

namespace sluice::vhost {

struct BlkRequest {
  BlkDevice::Queue* queue = nullptr;
  uint16_t head = 0;
  uint8_t* status = nullptr;  // the guest's status byte, written last
  uint32_t written = 0;       // bytes written into the guest's buffers, the status byte included
  int iovcnt = 0;
  Segment segs[BlkDevice::kSegMax + 2];  // data plus the header's and the status byte's
  iovec iov[BlkDevice::kSegMax + 2];
  bdev::IoWaitEntry wait;  // back-pressure: resubmit when the channel has room
  uint32_t type = 0;
  uint64_t lba = 0;
  uint64_t blocks = 0;
  BlkRequest* next_free = nullptr;
};

// Runs fn(arg) on `reactor` by message; a full message ring is retried from a poller of the
// calling reactor, since a queue's start and stop steps must not be lost. (The thread layer
// keeps its own never-lost send internal.)
void send_step(uint32_t reactor, thread::MsgFn fn, void* arg);

struct BlkDevice::Queue {
  BlkDevice* dev = nullptr;
  QueueContext ctx;
  Counters* counters = nullptr;
  uint32_t reactor = 0;  // where it runs
  uint32_t home = 0;     // the session's reactor, where on_stopped runs
  bool in_use = false;   // the session's reactor's: from start until on_stopped ran
  bool stop_requested = false;  // the session's reactor's
  bdev::BdevChannel* ch = nullptr;
  thread::Poller* poller = nullptr;
  net::Watch kick;
  std::vector<BlkRequest> pool;
  BlkRequest* free = nullptr;
  uint32_t in_flight = 0;
  bool completed = false;  // used entries added since the last signal check
  // Coalescing: the completion rate over the last window, and when the oldest interrupt
  // still held back became due (0: none held).
  uint64_t window_start_ns = 0;
  uint64_t window_completions = 0;
  bool above_threshold = false;
  uint64_t held_since_ns = 0;
  bool stopping = false;
  bool finished = false;  // finish_stop ran (the queue's reactor's)
  std::function<void()> on_stopped;
  // Heads a previous back end took and never returned (inflight region), oldest first;
  // served before anything new from the ring.
  std::vector<uint16_t> resubmit;
  size_t resubmitted = 0;

  // On the queue's reactor: channel, inflight recovery, poller, kick watch.
  Status run_start();
  // On the queue's reactor: stop taking requests; finish once none is in flight.
  void begin_stop();
  // Fills `resubmit` from the inflight region and moves the ring past those heads.
  void recover_inflight();
  // The poller: takes what the ring has, while the pool has room, then signals.
  static thread::PollStatus poll(void* arg);
  void start_request(uint16_t head);
  void submit(BlkRequest* r);
  // Finishes a request: status byte, used ring, inflight mark, pool.
  void complete(BlkRequest* r, uint8_t status);
  void signal_if_needed();
  // Whether an interrupt may go now or is held back for more completions to share it.
  bool interrupt_due();
  // Once stopping and nothing is in flight: finish_stop() from a message, outside the
  // channel's completion callback (which must not put the channel back).
  void maybe_finish_stop();
  // Signals what completed, returns the channel, runs on_stopped on the session's reactor.
  void finish_stop();
};

}  // namespace sluice::vhost
