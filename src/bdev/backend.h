// What a block-device backend implements besides its Bdev subclass (bdev.h). Users never
// include this.
//
// A backend is a Bdev subclass (the device: geometry, shared state) plus a BackendQueue per
// channel (the per-thread state: a ring, an aio context, a base-device channel). The generic
// layer validates, splits, counts and pools requests; the backend only moves data.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "bdev/bdev_io.h"
#include "thread/io_channel.h"

namespace sluice::bdev {

class BackendQueue {
 public:
  virtual ~BackendQueue() = default;
  // Starts `io`. The backend reports the outcome later with io->channel->complete(io, status),
  // which it may call from inside submit() (the callback still runs only in poll()).
  // Outstanding requests here never exceed geometry().queue_depth plus
  // BdevChannel::kChildPool (split children come from their own pool).
  virtual void submit(BdevIo* io) = 0;
  // Rings the doorbell for everything submitted since the last poll and reaps completions;
  // returns how many it reaped.
  virtual int poll() { return 0; }
  // Runs when a reset request reaches the backend: the channel has drained by then.
  virtual void reset() {}
  // BdevDesc::block_status() with a valid range; the default reports it all as data.
  virtual std::vector<BlockRun> block_status(uint64_t offset_blocks, uint64_t num_blocks, size_t max_runs) {
    (void)offset_blocks;
    (void)max_runs;
    return {BlockRun{num_blocks, false}};
  }

  // Optional completion wake-up, so that the channel's owner can sleep instead of polling
  // while requests are in flight (thread/io_channel.h, IoChannel::wake_fd). A queue that
  // supports it returns a descriptor that turns readable once poll() would reap something,
  // between a prepare_sleep() that returned true and the next finish_sleep(). prepare_sleep()
  // returns false when something is ready now (or submissions wait for the next poll()).
  // The defaults: no wake-up, the owner keeps polling.
  virtual int wake_fd() const { return -1; }
  virtual bool prepare_sleep() { return false; }
  virtual void finish_sleep(bool woken) { (void)woken; }
  // IoChannel::wait_in_kernel (thread/io_channel.h): submits what is queued and blocks until
  // a completion is ready for poll() or timeout_ns passed. False (the default): the queue
  // cannot, use the wake-up above.
  virtual bool wait_in_kernel(uint64_t timeout_ns) {
    (void)timeout_ns;
    return false;
  }
};



}  // namespace sluice::bdev
