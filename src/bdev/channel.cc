#include "bdev/channel.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "bdev/stacked.h"
#include "env/env.h"

namespace sluice::bdev {

BdevChannel::BdevChannel(Bdev& bdev, std::unique_ptr<BackendQueue> queue)
    : IoChannel(bdev), bdev_(bdev), geo_(bdev.geometry()), queue_(std::move(queue)),
      storage_(geo_.queue_depth), child_storage_(kChildPool), qos_(bdev.qos()) {
  for (auto& io : storage_) {
    io.channel = this;
    free_.push_back(&io);
  }
  for (auto& io : child_storage_) {
    io.channel = this;
    io.from_child_pool = true;
    free_children_.push_back(&io);
  }
  std::lock_guard lock(bdev_.channels_mu_);
  bdev_.live_channels_.push_back(this);
}

BdevChannel::~BdevChannel() {
  if (in_flight_ > 0)
    log::error("bdev {}: channel destroyed with {} request(s) in flight", bdev_.name(), in_flight_);
  queue_.reset();
  std::lock_guard lock(bdev_.channels_mu_);
  auto& live = bdev_.live_channels_;
  live.erase(std::remove(live.begin(), live.end(), this), live.end());
  bdev_.retired_.merge(stats_);
}

namespace {

bool is_block_op(IoType t) { return t == IoType::read || t == IoType::write || t == IoType::unmap || t == IoType::write_zeroes; }
bool is_data_op(IoType t) { return t == IoType::read || t == IoType::write; }

}  // namespace

Status BdevChannel::submit(IoType type, const iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
                           IoCallback cb, void* arg) {
  if (bdev_.removed()) [[unlikely]]
    return Status(Errc::aborted, fmt::format("bdev {} was removed", bdev_.name()));
  if (!geo_.supports(type)) [[unlikely]]
    return Status(Errc::not_supported, fmt::format("bdev {} does not support {}", bdev_.name(), io_type_name(type)));
  if (is_block_op(type)) {
    if (num_blocks == 0) [[unlikely]]
      return Status(Errc::invalid_argument, fmt::format("{} of zero blocks", io_type_name(type)));
    if (offset_blocks >= geo_.num_blocks || num_blocks > geo_.num_blocks - offset_blocks) [[unlikely]]
      return Status(Errc::out_of_range, fmt::format("{} of blocks [{}, +{}) beyond the end of bdev {} ({} blocks)",
                                                    io_type_name(type), offset_blocks, num_blocks, bdev_.name(),
                                                    geo_.num_blocks));
  }
  bool needs_bounce = false;
  if (is_data_op(type)) {
    if (iov == nullptr || iovcnt <= 0) [[unlikely]]
      return Status(Errc::invalid_argument, "no buffer given");
    uint64_t total = 0;
    uintptr_t misaligned = 0;
    for (int i = 0; i < iovcnt; ++i) {
      misaligned |= reinterpret_cast<uintptr_t>(iov[i].iov_base) | iov[i].iov_len;
      total += iov[i].iov_len;
    }
    needs_bounce = (misaligned & (geo_.buf_align - 1)) != 0;
    if (total != num_blocks * geo_.block_size) [[unlikely]]
      return Status(Errc::invalid_argument, fmt::format("buffer holds {} bytes but {} blocks of {} need {}", total,
                                                        num_blocks, geo_.block_size, num_blocks * geo_.block_size));
  }

  BdevIo* io = free_.pop_front();
  if (io == nullptr) [[unlikely]] {
    stats_.busy.add();
    return Status(Errc::busy, {});
  }
  ++in_flight_;
  io->type = type;
  io->status = Errc::ok;
  io->offset_blocks = offset_blocks;
  io->num_blocks = num_blocks;
  io->cb = cb;
  io->cb_arg = arg;
  io->parent = nullptr;
  io->submit_ticks = in_poll_ ? poll_ticks_ : clock::ticks();
  // Small vectors are copied so callers may pass stack arrays; large ones must outlive the I/O.
  if (iovcnt > 0 && iovcnt <= BdevIo::kInlineIovs) {
    std::copy(iov, iov + iovcnt, io->iov_storage);
    io->iovs = io->iov_storage;
  } else {
    io->iovs = const_cast<iovec*>(iov);
  }
  io->iovcnt = iovcnt;
  if (needs_bounce) [[unlikely]] {
    if (!bounce(io)) {
      release(io);
      return Status(Errc::no_space, fmt::format("bdev {}: no memory for a bounce buffer of {} bytes (the buffer is not "
                                                "aligned to the {} bytes the device needs)",
                                                bdev_.name(), num_blocks * geo_.block_size, geo_.buf_align));
    }
  }

  if (qos_.enabled()) [[unlikely]] {
    // Behind requests already waiting, even if the limit would let this one pass: FIFO.
    if (!throttled_.empty() || !qos_.admit(type, num_blocks * geo_.block_size, io->submit_ticks, qos_ticket_)) {
      stats_.throttled.add();
      throttled_.push_back(io);
      return Status::Ok();
    }
  }
  start(io);
  return Status::Ok();
}

// Hands an accepted request to the backend (or the split or reset machinery).
void BdevChannel::start(BdevIo* io) {
  const IoType type = io->type;
  if (type == IoType::reset) {
    resets_.push_back(io);
    return;
  }
  if (is_data_op(type) && geo_.max_transfer_blocks != 0 && io->num_blocks > geo_.max_transfer_blocks) {
    stats_.splits.add();
    io->children_in_flight = 0;
    io->split_next_block = io->offset_blocks;
    io->split_iov = 0;
    io->split_iov_offset = 0;
    io->split_waiting = false;
    split_more(io);
    return;
  }
  queue_->submit(io);
}

// Starts waiting requests, oldest first, for as long as the limits admit them (all of them
// once the limits are gone).
int BdevChannel::release_throttled() {
  int started = 0;
  if (bdev_.removed()) [[unlikely]] {  // nothing waits for a rate limit on a device that is gone
    while (BdevIo* io = throttled_.pop_front()) {
      complete(io, Errc::aborted);
      ++started;
    }
    return started;
  }
  const uint64_t now = clock::ticks();
  while (BdevIo* io = throttled_.front()) {
    if (qos_.enabled() && !qos_.admit(io->type, io->num_blocks * geo_.block_size, now, qos_ticket_)) break;
    throttled_.pop_front();
    start(io);
    ++started;
  }
  return started;
}

namespace {

// Moves a (segment, offset) cursor forward by `bytes` through an iovec array.
void advance(const iovec* iovs, int& seg, size_t& off, size_t bytes) {
  while (bytes > 0) {
    size_t avail = iovs[seg].iov_len - off;
    size_t step = std::min(avail, bytes);
    off += step;
    bytes -= step;
    if (off == iovs[seg].iov_len) {
      ++seg;
      off = 0;
    }
  }
}

}  // namespace

void BdevChannel::split_more(BdevIo* parent) {
  const uint64_t end = parent->offset_blocks + parent->num_blocks;
  const size_t bs = geo_.block_size;
  while (parent->split_next_block < end) {
    BdevIo* child = free_children_.pop_front();
    if (child == nullptr) {
      if (!parent->split_waiting) {
        parent->split_waiting = true;
        split_waiting_.push_back(parent);
      }
      return;
    }
    uint64_t blocks = std::min<uint64_t>(geo_.max_transfer_blocks, end - parent->split_next_block);
    size_t want = blocks * bs, got = 0;
    int seg = parent->split_iov, n = 0;
    size_t off = parent->split_iov_offset;
    while (got < want && n < BdevIo::kInlineIovs) {
      size_t take = std::min(parent->iovs[seg].iov_len - off, want - got);
      child->iov_storage[n++] = {static_cast<char*>(parent->iovs[seg].iov_base) + off, take};
      got += take;
      off += take;
      if (off == parent->iovs[seg].iov_len) {
        ++seg;
        off = 0;
      }
    }
    if (got < want) {
      // Too fragmented for one child: cut it at the last whole block it holds.
      size_t usable = got / bs * bs;
      if (usable == 0) {
        free_children_.push_front(child);
        parent->status = Errc::invalid_argument;
        parent->split_next_block = end;
        break;
      }
      size_t excess = got - usable;
      while (excess > 0) {
        iovec& last = child->iov_storage[n - 1];
        if (last.iov_len <= excess) {
          excess -= last.iov_len;
          --n;
        } else {
          last.iov_len -= excess;
          excess = 0;
        }
      }
      blocks = usable / bs;
      want = usable;
    }
    advance(parent->iovs, parent->split_iov, parent->split_iov_offset, want);

    child->type = parent->type;
    child->status = Errc::ok;
    child->offset_blocks = parent->split_next_block;
    child->num_blocks = blocks;
    child->iovs = child->iov_storage;
    child->iovcnt = n;
    child->parent = parent;
    parent->split_next_block += blocks;
    ++parent->children_in_flight;
    queue_->submit(child);
  }
  if (parent->children_in_flight == 0) finish(parent);  // only when splitting failed up front
}

void BdevChannel::child_done(BdevIo* child) {
  BdevIo* parent = child->parent;
  if (child->status != Errc::ok && parent->status == Errc::ok) {
    parent->status = child->status;
    parent->split_next_block = parent->offset_blocks + parent->num_blocks;  // stop issuing more
  }
  child->parent = nullptr;
  free_children_.push_front(child);
  --parent->children_in_flight;

  // A parent queued for child slots is finished by split_more() when its turn comes.
  if (!parent->split_waiting) {
    if (parent->split_next_block < parent->offset_blocks + parent->num_blocks) {
      split_more(parent);
    } else if (parent->children_in_flight == 0) {
      finish(parent);
    }
  }
  while (!split_waiting_.empty() && !free_children_.empty()) {
    BdevIo* waiting = split_waiting_.pop_front();
    waiting->split_waiting = false;
    split_more(waiting);
  }
}

// The device cannot take the caller's buffers as they are: it gets one aligned copy. Rare
// (a guest's or an initiator's odd buffer), so the copy is allocated per request.
bool BdevChannel::bounce(BdevIo* io) {
  const size_t bytes = io->num_blocks * geo_.block_size;
  void* b = env::dma_alloc(bytes, std::max<size_t>(geo_.buf_align, env::kDmaPageSize));
  if (b == nullptr) return false;
  stats_.bounced.add();
  if (io->type == IoType::write) iov_copy_from(io->iovs, io->iovcnt, 0, b, bytes);
  io->bounce = b;
  io->user_iovs = io->iovs;
  io->user_iovcnt = io->iovcnt;
  io->bounce_iov = {b, bytes};
  io->iovs = &io->bounce_iov;
  io->iovcnt = 1;
  return true;
}

// Before the callback: a read's bytes go to the caller's buffers, and the copy is freed.
void BdevChannel::unbounce(BdevIo* io) {
  if (io->type == IoType::read && io->status == Errc::ok)
    iov_copy_to(io->user_iovs, io->user_iovcnt, 0, io->bounce, io->bounce_iov.iov_len);
  env::dma_free(io->bounce);
  io->bounce = nullptr;
}

void BdevChannel::finish(BdevIo* io) {
  if (io->bounce != nullptr) [[unlikely]]
    unbounce(io);
  OpStats& st = stats_.by_type[static_cast<int>(io->type)];
  st.ops.add();
  if (io->status == Errc::ok) {
    st.bytes.add(io->num_blocks * geo_.block_size);
  } else {
    st.errors.add();
  }
  st.latency_ticks.record((in_poll_ ? poll_ticks_ : clock::ticks()) - io->submit_ticks);

  IoCallback cb = io->cb;
  void* arg = io->cb_arg;
  Errc status = io->status;
  release(io);
  if (cb) cb(arg, status);
  if (!waiters_.empty() && !free_.empty()) {
    IoWaitEntry* w = waiters_.pop_front();
    w->fn(w->arg);
  }
}

void BdevChannel::release(BdevIo* io) {
  --in_flight_;
  free_.push_front(io);  // LIFO: the hottest request is reused first
}

void BdevChannel::run_pending_resets() {
  uint32_t resets = 0;
  for (BdevIo* r = resets_.front(); r != nullptr; r = r->next) ++resets;
  if (in_flight_ != resets) return;  // other requests still draining
  queue_->reset();
  while (BdevIo* r = resets_.pop_front()) complete(r, Errc::ok);
}

int BdevChannel::poll() {
  int events = throttled_.empty() ? 0 : release_throttled();
  events += queue_->poll();
  poll_ticks_ = clock::ticks();  // after reaping: completions are observed now
  in_poll_ = true;
  if (!resets_.empty()) run_pending_resets();
  // One batch per call: callbacks that resubmit to a synchronous backend land in the next
  // batch, so a poll always returns.
  auto batch = done_.take_all();
  while (BdevIo* io = batch.pop_front()) {
    ++events;
    if (io->parent) {
      child_done(io);
    } else {
      finish(io);
    }
  }
  in_poll_ = false;
  return events;
}

}  // namespace sluice::bdev
