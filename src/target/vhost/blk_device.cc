// The virtio-blk device: features, config space, and the queues' start and stop
// (blk_device.h). Requests are in blk_request.cc.
#include "target/vhost/blk_device.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "target/vhost/blk_queue.h"
#include "target/vhost/virtio_ring.h"

namespace sluice::vhost {

BlkDevice::BlkDevice(bdev::BdevDesc& desc, BlkOptions options) : desc_(desc), options_(std::move(options)) {
  if (options_.num_queues == 0) options_.num_queues = 1;
  if (options_.serial.empty()) options_.serial = desc_.name();
  build_config();
}

BlkDevice::~BlkDevice() {
  for (auto& q : queues_)
    if (q && q->ch != nullptr) log::error("vhost-blk {}: queue {} destroyed while started", desc_.name(), q->ctx.index);
}

uint64_t BlkDevice::features() const {
  const bdev::Geometry& g = desc_.geometry();
  uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
               (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
               (1ull << VIRTIO_BLK_F_MQ);
  if (options_.read_only) f |= 1ull << VIRTIO_BLK_F_RO;
  if (!options_.read_only && g.supports(bdev::IoType::unmap)) f |= 1ull << VIRTIO_BLK_F_DISCARD;
  if (!options_.read_only && g.supports(bdev::IoType::write_zeroes)) f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
  return f;
}

void BlkDevice::build_config() {
  const bdev::Geometry& g = desc_.geometry();
  virtio_blk_config c{};
  c.capacity = g.size_bytes() / 512;
  c.seg_max = kSegMax;
  c.blk_size = g.block_size;
  c.num_queues = static_cast<uint16_t>(std::min<uint32_t>(options_.num_queues, 0xffff));
  const uint32_t sectors_per_block = std::max<uint32_t>(1, g.block_size / 512);
  // One range per DISCARD or WRITE_ZEROES, up to 4 Mi sectors (2 GiB), block aligned.
  const uint32_t max_sectors = (1u << 22) / sectors_per_block * sectors_per_block;
  c.max_discard_sectors = max_sectors;
  c.max_discard_seg = 1;
  c.discard_sector_alignment = sectors_per_block;
  c.max_write_zeroes_sectors = max_sectors;
  c.max_write_zeroes_seg = 1;
  c.write_zeroes_may_unmap = 0;
  config_.resize(sizeof c);
  std::memcpy(config_.data(), &c, sizeof c);
}

Status BlkDevice::start_queue(const QueueContext& ctx) {
  if (thread::current_reactor() == nullptr)
    return Status(Errc::invalid_argument, "vhost-blk queues run on a reactor");
  if (ctx.index >= options_.num_queues) return Status(Errc::out_of_range, fmt::format("queue {}", ctx.index));
  if (queues_.size() < options_.num_queues) queues_.resize(options_.num_queues);
  if (queues_[ctx.index] && queues_[ctx.index]->ch != nullptr)
    return Status(Errc::busy, fmt::format("vhost-blk {}: queue {} is still stopping", desc_.name(), ctx.index));
  auto q = std::make_unique<Queue>();
  q->dev = this;
  q->ctx = ctx;
  auto ch = desc_.get_channel();
  if (!ch.ok()) return ch.status();
  q->ch = ch.value();
  const uint32_t n = std::min<uint32_t>({ctx.queue->size(), kMaxRequestsPerQueue, desc_.geometry().queue_depth});
  q->pool.resize(std::max<uint32_t>(n, 1));
  for (BlkRequest& r : q->pool) {
    r.queue = q.get();
    r.next_free = q->free;
    q->free = &r;
  }
  q->recover_inflight();
  // With EVENT_IDX the guest kicks only past avail_event: say where we are before we sleep.
  ctx.queue->publish_avail_event();
  auto poller = thread::register_poller(Queue::poll, q.get(), 0, fmt::format("vhost-blk-{}-q{}", desc_.name(), ctx.index));
  if (!poller.ok()) {
    (void)desc_.put_channel(q->ch);
    return poller.status();
  }
  q->poller = poller.value();
  if (ctx.kick_fd >= 0) {
    // A kick only wakes the reactor; reading it keeps the level-triggered watch quiet.
    q->kick.fd = ctx.kick_fd;
    q->kick.arg = q.get();
    q->kick.fn = [](void* arg, uint32_t) {
      uint64_t v;
      (void)::read(static_cast<Queue*>(arg)->ctx.kick_fd, &v, sizeof v);
    };
    if (Status st = net::watch(&q->kick, EPOLLIN); !st.ok())
      log::warn("vhost-blk {}: queue {} polls without kicks: {}", desc_.name(), ctx.index, st.to_string());
  }
  log::info("vhost-blk {}: queue {} started ({} entries, {} requests)", desc_.name(), ctx.index, ctx.queue->size(), q->pool.size());
  queues_[ctx.index] = std::move(q);
  return Status::Ok();
}

void BlkDevice::Queue::recover_inflight() {
  if (!ctx.inflight.valid()) return;
  ctx.inflight.settle(ctx.queue->used_idx());
  for (uint32_t h = 0; h < ctx.queue->size(); ++h)
    if (ctx.inflight.is_inflight(static_cast<uint16_t>(h))) resubmit.push_back(static_cast<uint16_t>(h));
  if (resubmit.empty()) return;
  std::sort(resubmit.begin(), resubmit.end(),
            [this](uint16_t a, uint16_t b) { return ctx.inflight.counter(a) < ctx.inflight.counter(b); });
  ctx.queue->resume_after_inflight(static_cast<uint16_t>(resubmit.size()));
  log::notice("vhost-blk {}: queue {} resubmits {} request(s) a previous back end left in flight", dev->desc_.name(),
              ctx.index, resubmit.size());
}

void BlkDevice::stop_queue(uint32_t index, std::function<void()> done) {
  Queue* q = index < queues_.size() ? queues_[index].get() : nullptr;
  if (q == nullptr || q->ch == nullptr || q->stopping) {
    done();
    return;
  }
  q->stopping = true;
  q->on_stopped = std::move(done);
  if (q->poller != nullptr) (void)thread::unregister_poller(q->poller);
  q->poller = nullptr;
  net::unwatch(&q->kick);
  if (q->in_flight == 0)
    q->finish_stop();  // not inside a completion: the channel may go back now
  else
    q->maybe_finish_stop();
}

}  // namespace sluice::vhost
