// The queues of a virtio-scsi device (internal to src/target/vhost), each a RingQueue on its
// reactor: request queues run SCSI commands on the targets' scsi::Channels (scsi_request.cc);
// the control queue answers task management and notification queries, the event queue
// reports hot-plug (scsi_control.cc).
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "base/slot_pool.h"
#include "target/scsi/scsi.h"
#include "target/vhost/ring_queue.h"
#include "target/vhost/scsi_device.h"

namespace sluice::vhost {

class ScsiRequestQueue;

struct ScsiRequest {
  scsi::Task task;
  ScsiRequestQueue* queue = nullptr;
  ScsiTarget* target = nullptr;
  uint16_t head = 0;
  uint32_t segments = 0;
  Segment segs[ScsiDevice::kSegMax + 2];  // data plus the request header's and the response's
  iovec iov[ScsiDevice::kSegMax + 2];
  ScsiRequest* next_free = nullptr;
};

class ScsiRequestQueue final : public RingQueue {
 public:
  ScsiRequestQueue(ScsiDevice& dev, uint32_t requests, QueueCounters* counters);

 private:
  bool has_room() const override { return !pool_.empty(); }
  void start_request(uint16_t head) override;
  // Follows the slot table: a target gone from it loses this queue's channel once its
  // tasks here finished.
  bool poll_extra() override;
  void release() override;

  // Writes the response (and, with VIRTIO_SCSI_S_OK, what the task produced) and returns the
  // chain. `response` VIRTIO_SCSI_S_*; the task's results are used only with S_OK.
  void finish(ScsiRequest* r, uint8_t response);
  static void task_done(scsi::Task* t);

  struct Slot {
    std::shared_ptr<ScsiTarget> target;
    std::unique_ptr<scsi::Channel> channel;  // made at the target's first task here
  };
  ScsiDevice& dev_;
  QueueCounters* counters_;
  uint64_t generation_ = 0;
  std::array<Slot, ScsiTargets::kMaxTargets> slots_;
  std::vector<Slot> leaving_;  // out of the table, tasks still in flight here
  SlotPool<ScsiRequest> pool_;
};

class ScsiControlQueue final : public RingQueue {
 public:
  ScsiControlQueue(ScsiDevice& dev, QueueCounters* counters);

 private:
  bool has_room() const override { return waiting_.size() < kMaxWaiting; }
  void start_request(uint16_t head) override;
  // Answers the task management functions whose target's tasks have drained.
  bool poll_extra() override;
  // Answers what still waits: the ring is stopping (the guest resets the device or goes).
  void on_stop() override;
  void release() override { waiting_.clear(); }

  static constexpr size_t kMaxWaiting = 16;
  struct Waiting {
    uint16_t head;
    uint8_t* response;  // in guest memory
    uint8_t answer;
    std::shared_ptr<ScsiTarget> target;
  };
  void answer(uint16_t head, uint8_t* response, uint8_t value);
  ScsiDevice& dev_;
  QueueCounters* counters_;
  std::vector<Waiting> waiting_;
};

class ScsiEventQueue final : public RingQueue {
 public:
  explicit ScsiEventQueue(ScsiDevice& dev);

 private:
  Status acquire() override;
  // Takes a buffer from the ring only when there is an event for it.
  bool has_room() const override { return false; }
  void start_request(uint16_t) override {}
  bool poll_extra() override;
  // Fills the next posted buffer; false if the guest posted none.
  bool post(uint32_t event, uint32_t target, uint32_t reason);

  ScsiDevice& dev_;
  uint64_t generation_ = 0;
  uint64_t seen_event_ = 0;
  bool missed_ = false;  // an event found no buffer: the next one says so
};

}  // namespace sluice::vhost
