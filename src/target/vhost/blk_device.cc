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
  counters_ = std::make_unique<Counters[]>(options_.num_queues);
  set_coalescing(options_.coalescing);
  build_config();
}

BlkDevice::~BlkDevice() {
  for (auto& q : queues_)
    if (q && q->in_use) log::error("vhost-blk {}: queue {} destroyed while started", desc_.name(), q->ctx.index);
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
  if (queues_[ctx.index] && queues_[ctx.index]->in_use)
    return Status(Errc::busy, fmt::format("vhost-blk {}: queue {} is still stopping", desc_.name(), ctx.index));
  auto q = std::make_unique<Queue>();
  q->dev = this;
  q->ctx = ctx;
  q->counters = &counters_[ctx.index];
  q->home = thread::reactor_id(here);
  q->reactor = (q->home + ctx.index) % std::max<uint32_t>(1, thread::reactor_count());
  const uint32_t n = std::min<uint32_t>({ctx.queue->size(), kMaxRequestsPerQueue, desc_.geometry().queue_depth});
  q->pool.resize(std::max<uint32_t>(n, 1));
  for (BlkRequest& r : q->pool) {
    r.queue = q.get();
    r.next_free = q->free;
    q->free = &r;
  }
  Queue* raw = q.get();
  queues_[ctx.index] = std::move(q);
  raw->in_use = true;
  if (raw->reactor == raw->home) {
    Status st = raw->run_start();
    if (!st.ok()) raw->in_use = false;
    return st;
  }
  // Everything the queue reads was written before this message, which orders it.
  send_step(raw->reactor, [](void* arg) {
    auto* started = static_cast<Queue*>(arg);
    if (Status st = started->run_start(); !st.ok())
      log::error("vhost-blk {}: queue {} cannot start on reactor {}: {}", started->dev->desc_.name(),
                 started->ctx.index, started->reactor, st.to_string());
  }, raw);
  return Status::Ok();
}

Status BlkDevice::Queue::run_start() {
  const std::string& name = dev->desc_.name();
  auto channel = dev->desc_.get_channel();
  if (!channel.ok()) return channel.status();
  ch = channel.value();
  recover_inflight();
  // With EVENT_IDX the guest kicks only past avail_event: say where we are before we sleep.
  ctx.queue->publish_avail_event();
  auto p = thread::register_poller(Queue::poll, this, 0, fmt::format("vhost-blk-{}-q{}", name, ctx.index));
  if (!p.ok()) {
    (void)dev->desc_.put_channel(ch);
    ch = nullptr;
    return p.status();
  }
  poller = p.value();
  if (ctx.kick_fd >= 0) {
    // A kick only wakes the reactor; reading it keeps the level-triggered watch quiet.
    kick.fd = ctx.kick_fd;
    kick.arg = this;
    kick.fn = [](void* arg, uint32_t) {
      uint64_t v;
      (void)::read(static_cast<Queue*>(arg)->ctx.kick_fd, &v, sizeof v);
    };
    if (Status st = net::watch(&kick, EPOLLIN); !st.ok())
      log::warn("vhost-blk {}: queue {} polls without kicks: {}", name, ctx.index, st.to_string());
  }
  log::info("vhost-blk {}: queue {} started on reactor {} ({} entries, {} requests)", name, ctx.index, reactor,
            ctx.queue->size(), pool.size());
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
  if (q == nullptr || !q->in_use || q->stop_requested) {
    done();
    return;
  }
  q->stop_requested = true;
  q->on_stopped = std::move(done);
  if (q->reactor == q->home) {
    q->begin_stop();
    return;
  }
  send_step(q->reactor, [](void* arg) { static_cast<Queue*>(arg)->begin_stop(); }, q);
}

void BlkDevice::Queue::begin_stop() {
  stopping = true;
  if (poller != nullptr) (void)thread::unregister_poller(poller);
  poller = nullptr;
  net::unwatch(&kick);
  if (in_flight == 0)
    finish_stop();  // not inside a completion: the channel may go back now
  else
    maybe_finish_stop();
}

void send_step(uint32_t reactor, thread::MsgFn fn, void* arg) {
  Status st = thread::send_message(reactor, fn, arg);
  if (st.code() != Errc::busy) {
    if (!st.ok()) log::error("vhost-blk: a step for reactor {} is lost: {}", reactor, st.to_string());
    return;
  }
  // The reactor's ring is full: retry from a poller here until it takes it.
  auto self = std::make_shared<thread::Poller*>(nullptr);
  auto p = thread::register_poller([reactor, fn, arg, self] {
    Status again = thread::send_message(reactor, fn, arg);
    if (again.code() == Errc::busy) return thread::PollStatus::busy;
    if (!again.ok()) log::error("vhost-blk: a step for reactor {} is lost: {}", reactor, again.to_string());
    (void)thread::unregister_poller(*self);
    return thread::PollStatus::busy;
  }, 0, "vhost-blk-retry");
  if (p.ok())
    *self = p.value();
  else
    log::error("vhost-blk: a step for reactor {} is lost: {}", reactor, p.status().to_string());
}

BlkStats BlkDevice::stats() const {
  BlkStats out;
  for (uint32_t i = 0; i < options_.num_queues; ++i) {
    const Counters& c = counters_[i];
    out.requests += c.requests.load(std::memory_order_relaxed);
    out.errors += c.errors.load(std::memory_order_relaxed);
    out.bad_chains += c.bad_chains.load(std::memory_order_relaxed);
    out.unaligned_requests += c.unaligned.load(std::memory_order_relaxed);
  }
  return out;
}

void BlkDevice::set_coalescing(const Coalescing& c) {
  coalesce_delay_us_.store(c.delay_base_us, std::memory_order_relaxed);
  coalesce_threshold_.store(c.iops_threshold, std::memory_order_relaxed);
}

}  // namespace sluice::vhost
