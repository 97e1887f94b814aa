// virtio-scsi commands (virtio 1.1, 5.6.6.1): a descriptor chain taken apart into
// virtio_scsi_cmd_req, data-out buffers, virtio_scsi_cmd_resp and data-in buffers, run as a
// scsi::Task on the addressed target with the guest's buffers as its iovecs, and returned to
// the used ring with the SCSI status, sense and residual (scsi_queue.h).
#include <linux/virtio_scsi.h>

#include <algorithm>
#include <cstring>

#include "target/vhost/chain_buffers.h"
#include "target/vhost/scsi_queue.h"
#include "target/vhost/scsi_wire.h"

namespace sluice::vhost {

ScsiRequestQueue::ScsiRequestQueue(ScsiDevice& dev, uint32_t requests, QueueCounters* counters)
    : RingQueue("vhost-scsi", dev.coalescing()), dev_(dev), counters_(counters), pool_(requests) {
  for (ScsiRequest& r : pool_.slots()) r.queue = this;
}

bool ScsiRequestQueue::poll_extra() {
  bool work = false;
  if (dev_.targets().generation() != generation_) {
    ScsiTargets::Table table = dev_.targets().snapshot(&generation_);
    for (uint32_t i = 0; i < ScsiTargets::kMaxTargets; ++i) {
      if (slots_[i].target == table[i]) continue;
      if (slots_[i].target) leaving_.push_back(std::move(slots_[i]));
      slots_[i] = Slot{std::move(table[i]), nullptr};
    }
    work = true;
  }
  // A Channel goes on its own thread, outside any completion, with nothing in flight: here.
  const auto drained = [](const Slot& s) { return !s.channel || s.channel->in_flight() == 0; };
  const size_t before = leaving_.size();
  leaving_.erase(std::remove_if(leaving_.begin(), leaving_.end(), drained), leaving_.end());
  return work || leaving_.size() != before;
}

void ScsiRequestQueue::release() {
  // Nothing is in flight: every channel may go.
  leaving_.clear();
  for (Slot& s : slots_) s = Slot{};
  generation_ = 0;
}

void ScsiRequestQueue::start_request(uint16_t head) {
  ScsiRequest* r = pool_.take();
  QueueCounters::bump(counters_->requests);
  r->head = head;
  r->target = nullptr;
  r->segments = 0;
  Chain chain;
  if (!walk(head, r->segs, &chain, *counters_)) return finish(r, VIRTIO_SCSI_S_FAILURE);  // nothing written
  r->segments = chain.segments;
  const ScsiCommand c = parse_command(r->segs, chain.segments, chain, ScsiTargets::kMaxTargets, r->iov);
  switch (c.verdict) {
    case ScsiCommand::Verdict::ok: break;
    case ScsiCommand::Verdict::no_response: r->segments = 0; return finish(r, VIRTIO_SCSI_S_FAILURE);
    case ScsiCommand::Verdict::failure: return finish(r, VIRTIO_SCSI_S_FAILURE);
    case ScsiCommand::Verdict::bad_target: return finish(r, VIRTIO_SCSI_S_BAD_TARGET);
  }
  Slot& slot = slots_[c.target];
  if (!slot.target) return finish(r, VIRTIO_SCSI_S_BAD_TARGET);
  if (!slot.channel) slot.channel = std::make_unique<scsi::Channel>(slot.target->device);
  scsi::Task& t = r->task;
  t.cdb = c.cdb;
  t.cdb_length = 0;
  t.lun = c.lun;
  t.nexus = 0;
  t.direction = c.direction;
  t.iov = r->iov;
  t.iovcnt = c.iovcnt;
  t.expected_length = c.expected_length;
  t.done = task_done;
  t.ctx = r;
  r->target = slot.target.get();
  r->target->in_flight.fetch_add(1, std::memory_order_relaxed);
  slot.channel->execute(&t);
}

void ScsiRequestQueue::task_done(scsi::Task* t) {
  auto* r = static_cast<ScsiRequest*>(t->ctx);
  r->queue->finish(r, VIRTIO_SCSI_S_OK);
}

void ScsiRequestQueue::finish(ScsiRequest* r, uint8_t response) {
  uint32_t written = 0;
  const scsi::Task& t = r->task;
  bool failed = response != VIRTIO_SCSI_S_OK;
  if (r->segments != 0) {
    virtio_scsi_cmd_resp resp{};
    resp.response = response;
    written = kScsiResponseBytes;
    if (response == VIRTIO_SCSI_S_OK) {
      resp.status = t.status;
      resp.sense_len = std::min<uint32_t>(t.sense_length, sizeof resp.sense);
      std::memcpy(resp.sense, t.sense.data(), resp.sense_len);
      resp.resid = t.transferred < t.expected_length ? t.expected_length - t.transferred : 0;
      if (t.direction == scsi::DataDirection::read) written += std::min(t.transferred, t.expected_length);
      failed = t.status != scsi::kStatusGood;
    }
    // The response after the data: the guest may look at both once the chain is used.
    if (!scatter(r->segs, r->segments, &resp, kScsiResponseBytes)) written = 0;
  }
  if (failed) QueueCounters::bump(counters_->errors);
  if (r->target != nullptr) r->target->in_flight.fetch_sub(1, std::memory_order_release);
  r->target = nullptr;
  pool_.put_back(r);
  return_used(r->head, written);
}

}  // namespace sluice::vhost
