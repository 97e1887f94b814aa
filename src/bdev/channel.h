// BdevChannel: a thread's context for one bdev — request pools, the backend's queue,
// completion delivery, splitting and statistics.
#pragma once

#include <memory>
#include <vector>

#include "base/intrusive_list.h"
#include "bdev/backend.h"
#include "bdev/bdev_io.h"
#include "bdev/qos.h"
#include "thread/io_channel.h"

namespace sluice::bdev {

class BdevChannel final : public thread::IoChannel {
 public:
  static constexpr uint32_t kChildPool = 64;  // split children; separate so parents never starve them

  BdevChannel(Bdev& bdev, std::unique_ptr<BackendQueue> queue);
  ~BdevChannel() override;

  int poll() override;
  bool has_outstanding() const override { return in_flight_ > 0; }
  int wake_fd() const override { return queue_->wake_fd(); }
  bool prepare_sleep() override { return !poll_has_work() && queue_->prepare_sleep(); }
  void finish_sleep(bool woken) override { queue_->finish_sleep(woken); }
  bool wait_in_kernel(uint64_t timeout_ns) override { return poll_has_work() || queue_->wait_in_kernel(timeout_ns); }

  Bdev& bdev() const { return bdev_; }
  const IoStats& stats() const { return stats_; }
  uint32_t in_flight() const { return in_flight_; }

  // Called by backends when a request finishes (may be called from inside submit).
  void complete(BdevIo* io, Errc status) {
    io->status = status;
    done_.push_back(io);
  }

  // The generic submit path shared by every BdevDesc operation. `iov` may be null for
  // single-buffer and bufferless operations.
  Status submit(IoType type, const iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
                IoCallback cb, void* arg);
  void wait_for_room(IoWaitEntry* entry) { waiters_.push_back(entry); }
  std::vector<BlockRun> block_status(uint64_t offset_blocks, uint64_t num_blocks, size_t max_runs) {
    return queue_->block_status(offset_blocks, num_blocks, max_runs);
  }

 private:
  // Completions already reaped, resets that may be ready, and requests waiting for a rate
  // limit need a poll(), not a sleep.
  bool poll_has_work() const { return !done_.empty() || !resets_.empty() || !throttled_.empty(); }
  BdevIo* take(std::vector<BdevIo>& pool_storage, IntrusiveQueue<BdevIo>& pool);
  void start(BdevIo* io);
  int release_throttled();
  void split_more(BdevIo* parent);
  void finish(BdevIo* io);
  bool bounce(BdevIo* io);
  void unbounce(BdevIo* io);
  void child_done(BdevIo* child);
  void release(BdevIo* io);
  void run_pending_resets();

  Bdev& bdev_;
  const Geometry geo_;
  std::unique_ptr<BackendQueue> queue_;
  std::vector<BdevIo> storage_;
  std::vector<BdevIo> child_storage_;
  IntrusiveQueue<BdevIo> free_;
  IntrusiveQueue<BdevIo> free_children_;
  IntrusiveQueue<BdevIo> done_;
  IntrusiveQueue<BdevIo> split_waiting_;  // parents waiting for child slots
  IntrusiveQueue<BdevIo> resets_;         // resets waiting for the channel to drain
  IntrusiveQueue<BdevIo> throttled_;      // waiting for the bdev's rate limits, in order
  Qos& qos_;
  QosTicket qos_ticket_;
  IntrusiveQueue<IoWaitEntry> waiters_;
  uint32_t in_flight_ = 0;  // user requests between submit and callback
  // Latency timestamps: one clock read per poll() serves every completion it delivers and
  // every request its callbacks submit; only submissions from outside poll() read the clock.
  // At tens of millions of I/Os per second, two clock reads per I/O would cost more than the
  // rest of the layer.
  uint64_t poll_ticks_ = 0;
  bool in_poll_ = false;
  IoStats stats_;
};

}  // namespace sluice::bdev
