// A vhost-scsi controller's target slots (internal to src/target/vhost): up to 8 SCSI
// targets, each a scsi::Device with LUN 0 over a bdev, as SPDK's vhost-scsi has them. The
// slots outlive connections; the control path adds and removes targets while queues run.
//
// Publication: the slot table sits behind a mutex that only the control path and a queue
// that sees generation() move take; the data path reads its own copy of the table. A
// target is shared (shared_ptr) by the table and by the queues that hold a copy; a queue
// drops its copy, and its scsi::Channel to the target, on its reactor once the target left
// the table and its tasks there finished. The last holder destroys the target (its
// scsi::Device and bdev handle) on its thread.
//
// Hot-plug events: every add and remove is also logged (the last kMaxEvents), for the event
// queue of a connection that negotiated VIRTIO_SCSI_F_HOTPLUG.
//
// A target whose bdev is hot-removed leaves the table by itself, as if the control path had
// removed it: the guest gets the removal event and BAD_TARGET for the slot, instead of a disk
// that fails every command, and the slot takes a new target.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "target/scsi/scsi.h"

namespace sluice::vhost {

struct ScsiTarget {
  ScsiTarget(uint32_t slot, std::string bdev_name, scsi::DeviceOptions options)
      : id(slot), bdev(std::move(bdev_name)), device(std::move(options)) {}
  const uint32_t id;
  const std::string bdev;
  scsi::Device device;
  // Tasks in flight on every queue (a task management function waits for them).
  std::atomic<int64_t> in_flight{0};
};

class ScsiTargets : public std::enable_shared_from_this<ScsiTargets> {
 public:
  static constexpr uint32_t kMaxTargets = 8;
  static constexpr size_t kMaxEvents = 64;
  using Table = std::array<std::shared_ptr<ScsiTarget>, kMaxTargets>;

  struct Event {
    uint64_t seq = 0;
    uint32_t target = 0;
    bool added = false;
  };

  // `changed` runs after a hot-remove changed the table (the reactors' queues look at
  // generation() when they run; it wakes them). Made with std::make_shared only.
  ScsiTargets(std::string controller, std::function<void()> changed)
      : controller_(std::move(controller)), changed_(std::move(changed)) {}

  // Control path. `slot` -1: the first free one. Returns the slot.
  Result<uint32_t> add(int64_t slot, std::string_view bdev);
  // Takes the target out of the table; it goes once the queues let go of it (wait_gone()).
  Result<std::weak_ptr<ScsiTarget>> remove(int64_t slot);
  // (slot, bdev) of every target, in slot order.
  std::vector<std::pair<uint32_t, std::string>> list() const;

  // Data path: changes when the table or the event log does.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // The table and the generation it belongs to.
  Table snapshot(uint64_t* generation) const;
  // Events logged after `seq`, and the last seq (0: none yet).
  std::vector<Event> events_after(uint64_t seq, uint64_t* last) const;

 private:
  void log_event_locked(uint32_t target, bool added);
  // The hot-remove hook of the target in `slot`: takes it out unless it was replaced.
  void bdev_removed(uint32_t slot, const std::weak_ptr<ScsiTarget>& which);

  const std::string controller_;
  const std::function<void()> changed_;
  mutable std::mutex mu_;
  Table table_;
  std::deque<Event> events_;
  uint64_t next_seq_ = 1;
  std::atomic<uint64_t> generation_{1};
};

}  // namespace sluice::vhost
