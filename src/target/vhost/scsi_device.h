// virtio-scsi over a controller's SCSI targets (virtio 1.1, 5.6): queue 0 is the control
// queue (task management, asynchronous notification queries), queue 1 the event queue
// (hot-plug events), queues 2 and up carry SCSI commands, each run on a reactor the way
// virtio-blk's are (ring_queue.h): request queue i (queue i + 2) on reactor (session's + i)
// mod count; the control and event queues, which carry little, on the session's.
//
// A command's 8-byte LUN field addresses a target slot (byte 1) and a LUN (bytes 2-3, SAM
// flat or peripheral). An empty slot answers VIRTIO_SCSI_S_BAD_TARGET; a LUN the target does
// not have goes to the SCSI layer, which answers as a target with only LUN 0 does (INQUIRY
// with peripheral qualifier 3, REPORT LUNS, else LOGICAL UNIT NOT SUPPORTED). The guest's
// data buffers become the task's iovecs, without a copy; the SCSI status, sense and residual
// go back in virtio_scsi_cmd_resp. A chain without a whole request header or room for the
// response fails alone (VIRTIO_SCSI_S_FAILURE if the response can be written, else nothing
// written); a chain the walker refuses is returned with nothing written.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "target/vhost/device.h"
#include "target/vhost/ring_queue.h"
#include "target/vhost/scsi_targets.h"
#include "target/vhost/vhost.h"  // BlkStats, Coalescing

namespace sluice::vhost {

struct ScsiOptions {
  uint32_t num_queues = 1;  // request queues (config space num_queues); two more come first
  Coalescing coalescing;
};

class ScsiDevice final : public Device {
 public:
  static constexpr uint32_t kFixedQueues = 2;  // control, event
  static constexpr uint32_t kSegMax = 126;
  static constexpr uint32_t kMaxRequestsPerQueue = 128;

  ScsiDevice(std::shared_ptr<ScsiTargets> targets, ScsiOptions options);
  ~ScsiDevice() override;

  uint64_t features() const override;
  void set_features(uint64_t features) override { features_ = features; }
  uint32_t num_queues() const override { return kFixedQueues + options_.num_queues; }
  std::span<const uint8_t> config() const override { return config_; }
  Status start_queue(const QueueContext& ctx) override;
  void stop_queue(uint32_t index, std::function<void()> done) override;

  // Every queue's counters summed (read racily, by design).
  BlkStats stats() const;
  void set_coalescing(const Coalescing& c) { coalescing_.set(c); }
  bool hotplug() const;
  ScsiTargets& targets() const { return *targets_; }
  QueueCounters& counters(uint32_t index) { return counters_[index]; }
  const CoalescingKnobs* coalescing() const { return &coalescing_; }

 private:
  std::shared_ptr<ScsiTargets> targets_;
  ScsiOptions options_;
  uint64_t features_ = 0;
  std::vector<uint8_t> config_;
  std::vector<std::unique_ptr<RingQueue>> queues_;  // the session's reactor's
  std::unique_ptr<QueueCounters[]> counters_;
  CoalescingKnobs coalescing_;
};

}  // namespace sluice::vhost
