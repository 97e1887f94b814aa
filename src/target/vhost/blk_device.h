// virtio-blk over any bdev (virtio 1.1, 5.2): IN, OUT, FLUSH, GET_ID, DISCARD and
// WRITE_ZEROES, the guest's buffers handed to the bdev as iovecs, without a copy.
//
// One BlkDevice serves one vhost-user connection. Its queues are spread over the reactors:
// queue i runs on reactor (session's + i) mod count, where it has a channel to the bdev, a
// pool of requests (no allocation per request) and a poller that takes requests from the
// available ring while there is room in the pool; a full pool leaves the rest in the ring
// (back-pressure). The kick descriptor is watched only so that a sleeping reactor wakes;
// the poller finds the work. Starting and stopping a queue go to its reactor by message,
// and a stop's done() comes back to the session's reactor the same way.
//
// A request whose chain is malformed, whose header or status byte is missing, or that asks
// for something out of range completes with VIRTIO_BLK_S_IOERR (or UNSUPP), the status byte
// written last, when there is one; a chain the walker refuses is returned with nothing
// written. A guest buffer that does not meet the bdev's alignment is copied through the bdev
// layer's bounce buffer (counted in unaligned_requests).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "target/vhost/device.h"
#include "target/vhost/ring_queue.h"
#include "target/vhost/vhost.h"  // BlkStats

namespace sluice::vhost {

struct BlkOptions {
  uint32_t num_queues = 1;
  bool read_only = false;
  std::string serial;  // GET_ID's answer (20 bytes at most); empty: the bdev's name
  Coalescing coalescing;
};

class BlkDevice final : public Device {
 public:
  // Data segments per request offered to the guest (VIRTIO_BLK_F_SEG_MAX).
  static constexpr uint32_t kSegMax = 126;
  // Requests in flight per queue at most, whatever the ring size.
  static constexpr uint32_t kMaxRequestsPerQueue = 256;

  // `desc` must outlive the device; channels come from it on the reactor of each queue.
  BlkDevice(bdev::BdevDesc& desc, BlkOptions options);
  // Every queue must have been stopped (stop_queue's done() has run).
  ~BlkDevice() override;

  uint64_t features() const override;
  void set_features(uint64_t features) override { features_ = features; }
  uint32_t num_queues() const override { return options_.num_queues; }
  std::span<const uint8_t> config() const override { return config_; }
  Status start_queue(const QueueContext& ctx) override;
  void stop_queue(uint32_t index, std::function<void()> done) override;

  // Sums every queue's counters (each written by its own reactor; read racily, by design).
  BlkStats stats() const;
  // Takes effect at each queue's next interrupt; any thread.
  void set_coalescing(const Coalescing& c);

  // Per queue index.
  using Counters = QueueCounters;

  struct Queue;

 private:
  friend struct Queue;
  void build_config();

  bdev::BdevDesc& desc_;
  BlkOptions options_;
  uint64_t features_ = 0;
  std::vector<uint8_t> config_;
  std::vector<std::unique_ptr<Queue>> queues_;  // the session's reactor's
  std::unique_ptr<Counters[]> counters_;
  CoalescingKnobs coalescing_;
};

}  // namespace sluice::vhost
