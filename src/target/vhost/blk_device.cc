// The virtio-blk device: features, config space, and the queues' start and stop
// (blk_device.h). Requests are in blk_request.cc.
#include "target/vhost/blk_device.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

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
  counters_ = std::make_unique<Counters[]>(options_.num_queues);
  set_coalescing(options_.coalescing);
  build_config();
}

BlkDevice::~BlkDevice() {
  for (auto& q : queues_)
    if (q && q->in_use()) log::error("vhost-blk {}: queue {} destroyed while started", desc_.name(), q->index());
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
  thread::Reactor* here = thread::current_reactor();
  if (here == nullptr) return Status(Errc::invalid_argument, "vhost-blk queues run on a reactor");
  if (ctx.index >= options_.num_queues) return Status(Errc::out_of_range, fmt::format("queue {}", ctx.index));
  if (queues_.size() < options_.num_queues) queues_.resize(options_.num_queues);
  if (queues_[ctx.index] && queues_[ctx.index]->in_use())
    return Status(Errc::busy, fmt::format("vhost-blk {}: queue {} is still stopping", desc_.name(), ctx.index));
  const uint32_t n = std::min<uint32_t>({ctx.queue->size(), kMaxRequestsPerQueue, desc_.geometry().queue_depth});
  queues_[ctx.index] = std::make_unique<Queue>(this, std::max<uint32_t>(n, 1));
  queues_[ctx.index]->counters = &counters_[ctx.index];
  const uint32_t home = thread::reactor_id(here);
  return queues_[ctx.index]->start(ctx, (home + ctx.index) % std::max<uint32_t>(1, thread::reactor_count()));
}

BlkDevice::Queue::Queue(BlkDevice* device, uint32_t requests)
    : RingQueue("vhost-blk " + device->desc_.name(), &device->coalescing_), dev(device), pool(requests) {
  for (BlkRequest& r : pool.slots()) r.queue = this;
}

Status BlkDevice::Queue::acquire() {
  auto channel = dev->desc_.get_channel();
  if (!channel.ok()) return channel.status();
  ch = channel.value();
  return Status::Ok();
}

void BlkDevice::Queue::release() {
  if (ch != nullptr) {
    if (Status st = dev->desc_.put_channel(ch); !st.ok())
      log::error("vhost-blk {}: returning queue {}'s channel: {}", dev->desc_.name(), ctx.index, st.to_string());
  }
  ch = nullptr;
}

void BlkDevice::stop_queue(uint32_t index, std::function<void()> done) { stop_queue_in(queues_, index, std::move(done)); }

BlkStats BlkDevice::stats() const { return sum_counters(counters_.get(), options_.num_queues); }

void BlkDevice::set_coalescing(const Coalescing& c) { coalescing_.set(c); }

}  // namespace sluice::vhost
