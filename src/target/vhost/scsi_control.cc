// The virtio-scsi control queue (virtio 1.1, 5.6.6.2: task management, asynchronous
// notification) and event queue (5.6.6.3: hot-plug), scsi_queue.h.
//
// Task management: the SCSI layer keeps no task set and a task cannot be taken back from a
// bdev, so every abort, reset or query is answered once the target's tasks in flight (on any
// queue) have finished: by then nothing the function named is left to abort.
#include <linux/virtio_scsi.h>

#include <algorithm>

#include "target/vhost/chain_buffers.h"
#include "target/vhost/scsi_queue.h"
#include "target/vhost/scsi_wire.h"

namespace sluice::vhost {
namespace {

constexpr uint32_t kControlSegments = 8;
constexpr uint8_t kFunctionComplete = VIRTIO_SCSI_S_OK;  // virtio 1.1 5.6.6.2: FUNCTION COMPLETE is 0

}  // namespace

ScsiControlQueue::ScsiControlQueue(ScsiDevice& dev, QueueCounters* counters)
    : RingQueue("vhost-scsi-control", dev.coalescing()), dev_(dev), counters_(counters) {
  waiting_.reserve(kMaxWaiting);
}

void ScsiControlQueue::answer(uint16_t head, uint8_t* response, uint8_t value) {
  __atomic_store_n(response, value, __ATOMIC_RELEASE);
  return_used(head, 1);
}

void ScsiControlQueue::start_request(uint16_t head) {
  QueueCounters::bump(counters_->requests);
  Segment segs[kControlSegments];
  Chain chain;
  if (!walk(head, segs, &chain, *counters_)) return return_used(head, 0);
  const ControlRequest req = parse_control(segs, chain.segments, ScsiTargets::kMaxTargets);
  if (req.kind == ControlRequest::Kind::malformed) {
    QueueCounters::bump(counters_->errors);
    return return_used(head, 0);
  }
  if (req.kind == ControlRequest::Kind::an) {
    // No asynchronous notification is offered: none is reported, whatever was asked.
    virtio_scsi_ctrl_an_resp resp{};
    resp.event_actual = 0;
    resp.response = VIRTIO_SCSI_S_OK;
    if (!scatter(segs, chain.segments, &resp, sizeof resp)) {
      QueueCounters::bump(counters_->errors);
      return return_used(head, 0);
    }
    return return_used(head, sizeof resp);
  }
  uint8_t* response = req.response;
  uint64_t generation = 0;
  std::shared_ptr<ScsiTarget> target = req.target < 0 ? nullptr : dev_.targets().snapshot(&generation)[req.target];
  if (!target) return answer(head, response, VIRTIO_SCSI_S_BAD_TARGET);
  const uint64_t lun = req.lun;
  const std::vector<uint64_t> luns = target->device.luns();
  const bool lun_exists = std::find(luns.begin(), luns.end(), lun) != luns.end();
  uint8_t result = VIRTIO_SCSI_S_FUNCTION_SUCCEEDED;
  switch (req.subtype) {
    case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
      if (!lun_exists) return answer(head, response, VIRTIO_SCSI_S_INCORRECT_LUN);
      target->device.reset_lun(lun);
      break;
    case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
    case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
    case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET: break;
    case VIRTIO_SCSI_T_TMF_ABORT_TASK:
    case VIRTIO_SCSI_T_TMF_QUERY_TASK:
    case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
      result = kFunctionComplete;  // once drained, no such task is left
      break;
    default:  // CLEAR ACA (no ACA is offered) and anything unknown
      return answer(head, response, VIRTIO_SCSI_S_FUNCTION_REJECTED);
  }
  waiting_.push_back({head, response, result, std::move(target)});
}

bool ScsiControlQueue::poll_extra() {
  bool work = false;
  for (size_t i = 0; i < waiting_.size();) {
    if (waiting_[i].target->in_flight.load(std::memory_order_acquire) != 0) {
      ++i;
      continue;
    }
    Waiting done = std::move(waiting_[i]);
    waiting_.erase(waiting_.begin() + static_cast<ptrdiff_t>(i));
    answer(done.head, done.response, done.answer);
    work = true;
  }
  // The tasks finish on other reactors, which do not wake this one: stay awake meanwhile.
  return work || !waiting_.empty();
}

void ScsiControlQueue::on_stop() {
  std::vector<Waiting> left = std::move(waiting_);
  waiting_.clear();
  for (Waiting& w : left) answer(w.head, w.response, w.answer);
}

ScsiEventQueue::ScsiEventQueue(ScsiDevice& dev) : RingQueue("vhost-scsi-event", dev.coalescing()), dev_(dev) {}

Status ScsiEventQueue::acquire() {
  // Only what happens from now on is reported: the guest scans what is there when it starts.
  (void)dev_.targets().events_after(UINT64_MAX, &seen_event_);
  generation_ = dev_.targets().generation();
  return Status::Ok();
}

bool ScsiEventQueue::poll_extra() {
  bool work = false;
  const uint64_t generation = dev_.targets().generation();
  if (generation != generation_) {
    generation_ = generation;
    for (const ScsiTargets::Event& e : dev_.targets().events_after(seen_event_, &seen_event_)) {
      if (!dev_.hotplug()) continue;
      (void)post(VIRTIO_SCSI_T_TRANSPORT_RESET, e.target,
                 e.added ? VIRTIO_SCSI_EVT_RESET_RESCAN : VIRTIO_SCSI_EVT_RESET_REMOVED);
      work = true;
    }
  }
  // A lost event is reported as soon as there is a buffer for it: the guest then rescans.
  if (missed_ && post(VIRTIO_SCSI_T_NO_EVENT, ScsiTargets::kMaxTargets, 0)) work = true;
  return work;
}

bool ScsiEventQueue::post(uint32_t event, uint32_t target, uint32_t reason) {
  uint16_t head;
  if (!ctx.queue->pop(&head)) {
    missed_ = true;
    return false;
  }
  ctx.queue->publish_avail_event();
  ++in_flight;
  ctx.inflight.taken(head);
  virtio_scsi_event ev{};
  ev.event = event | (missed_ ? VIRTIO_SCSI_T_EVENTS_MISSED : 0);
  if (target < ScsiTargets::kMaxTargets) {
    ev.lun[0] = 1;
    ev.lun[1] = static_cast<uint8_t>(target);
  }
  ev.reason = reason;
  Segment segs[kControlSegments];
  Chain chain;
  if (ctx.queue->walk(head, segs, &chain) != ChainError::none || !scatter(segs, chain.segments, &ev, sizeof ev)) {
    missed_ = true;  // a buffer that cannot hold it loses the event
    return_used(head, 0);
    return true;
  }
  missed_ = false;
  return_used(head, sizeof ev);
  return true;
}

}  // namespace sluice::vhost
