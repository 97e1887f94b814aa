// One started virtio-blk queue (internal to src/target/vhost): its request pool and its
// channel to the bdev, on the reactor that started it (the ring's side is RingQueue's).
// blk_device.cc starts and stops it; blk_request.cc turns a descriptor chain into bdev I/O
// and back.
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "base/slot_pool.h"
#include "bdev/bdev.h"
#include "target/vhost/blk_device.h"
#include "target/vhost/ring_queue.h"

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

struct BlkDevice::Queue final : RingQueue {
  Queue(BlkDevice* device, uint32_t requests);

  BlkDevice* dev = nullptr;
  Counters* counters = nullptr;
  bdev::BdevChannel* ch = nullptr;
  SlotPool<BlkRequest> pool;

  Status acquire() override;
  void release() override;
  bool has_room() const override { return !pool.empty(); }
  void start_request(uint16_t head) override;
  void submit(BlkRequest* r);
  // Finishes a request: status byte, used ring, inflight mark, pool.
  void complete(BlkRequest* r, uint8_t status);
};

}  // namespace sluice::vhost
