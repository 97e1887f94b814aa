// The virtio-scsi device: features, config space, and which queue is which (scsi_device.h).
#include "target/vhost/scsi_device.h"

#include <linux/virtio_config.h>
#include <linux/virtio_scsi.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "target/vhost/scsi_queue.h"
#include "target/vhost/virtio_ring.h"

namespace sluice::vhost {

ScsiDevice::ScsiDevice(std::shared_ptr<ScsiTargets> targets, ScsiOptions options)
    : targets_(std::move(targets)), options_(options) {
  if (options_.num_queues == 0) options_.num_queues = 1;
  counters_ = std::make_unique<QueueCounters[]>(num_queues());
  coalescing_.set(options_.coalescing);
  virtio_scsi_config c{};
  c.num_queues = options_.num_queues;
  c.seg_max = kSegMax;
  c.max_sectors = 0xffff;
  c.cmd_per_lun = kMaxRequestsPerQueue;
  c.event_info_size = sizeof(virtio_scsi_event);
  c.sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
  c.cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE;
  c.max_channel = 0;
  c.max_target = ScsiTargets::kMaxTargets - 1;
  c.max_lun = scsi::kMaxLun;
  config_.resize(sizeof c);
  std::memcpy(config_.data(), &c, sizeof c);
}

ScsiDevice::~ScsiDevice() {
  for (auto& q : queues_)
    if (q && q->in_use()) log::error("vhost-scsi: queue {} destroyed while started", q->index());
}

// VIRTIO_SCSI_F_CHANGE (parameter-change events) is offered although none is ever sent: QEMU's
// vhost-user-scsi acks it whatever the back end offers (virtio-scsi's own default), and a
// SET_FEATURES with a bit never offered closes the connection.
uint64_t ScsiDevice::features() const {
  return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
         (1ull << VIRTIO_SCSI_F_HOTPLUG) | (1ull << VIRTIO_SCSI_F_CHANGE);
}

bool ScsiDevice::hotplug() const { return (features_ & (1ull << VIRTIO_SCSI_F_HOTPLUG)) != 0; }

Status ScsiDevice::start_queue(const QueueContext& ctx) {
  thread::Reactor* here = thread::current_reactor();
  if (here == nullptr) return Status(Errc::invalid_argument, "vhost-scsi queues run on a reactor");
  if (ctx.index >= num_queues()) return Status(Errc::out_of_range, fmt::format("queue {}", ctx.index));
  if (queues_.size() < num_queues()) queues_.resize(num_queues());
  std::unique_ptr<RingQueue>& q = queues_[ctx.index];
  if (q && q->in_use()) return Status(Errc::busy, fmt::format("vhost-scsi: queue {} is still stopping", ctx.index));
  if (ctx.index == 0) {
    q = std::make_unique<ScsiControlQueue>(*this, &counters_[0]);
  } else if (ctx.index == 1) {
    q = std::make_unique<ScsiEventQueue>(*this);
  } else {
    const uint32_t n = std::min<uint32_t>(ctx.queue->size(), kMaxRequestsPerQueue);
    q = std::make_unique<ScsiRequestQueue>(*this, std::max<uint32_t>(n, 1), &counters_[ctx.index]);
  }
  const uint32_t home = thread::reactor_id(here);
  // The control and event queues are light: they stay with the session.
  const uint32_t reactor = ctx.index < kFixedQueues ? home : (home + ctx.index - kFixedQueues) % std::max<uint32_t>(1, thread::reactor_count());
  return q->start(ctx, reactor);
}

void ScsiDevice::stop_queue(uint32_t index, std::function<void()> done) { stop_queue_in(queues_, index, std::move(done)); }

BlkStats ScsiDevice::stats() const { return sum_counters(counters_.get(), num_queues()); }

}  // namespace sluice::vhost
