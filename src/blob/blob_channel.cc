// BlobChannel lifecycle (one per thread per store, reference counted), polling, and the
// asynchronous cluster copies of copy-on-write.
#include "blob/blob_channel.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "bdev/channel.h"
#include "thread/io_channel.h"

namespace sluice::blob {
namespace {

int shift_of(uint64_t n) { return std::has_single_bit(n) ? std::countr_zero(n) : -1; }

// The calling thread's channels, one per store. A handful at most, so a vector.
struct ChannelRef {
  Store* store;
  BlobChannel* ch;
};
thread_local std::vector<ChannelRef> t_channels;

void copy_step(BlobChannel& ch, CopyOp* op);

void copy_io_done(void* arg, Errc status) {
  auto* op = static_cast<CopyOp*>(arg);
  BlobChannel& ch = *op->ch;
  if (status != Errc::ok) {
    op->status = status;
    ch.copy_finish.push_back(op);
    return;
  }
  if (op->writing) {
    op->done_blocks += op->step_blocks;
    op->writing = false;
  } else {
    op->writing = true;
  }
  copy_step(ch, op);  // the next bdev request; a callback may submit
}

void copy_step(BlobChannel& ch, CopyOp* op) {
  if (op->status != Errc::ok || op->done_blocks == ch.units_per_cluster) {
    ch.copy_finish.push_back(op);  // publishing takes the store lock: only from poll
    return;
  }
  op->step_blocks = std::min(ch.copy_chunk_blocks, ch.units_per_cluster - op->done_blocks);
  Status st = op->writing
                  ? ch.desc.write(ch.bch, op->buf.get(), ch.lba(op->grant.cluster + 1, op->done_blocks), op->step_blocks,
                                  copy_io_done, op)
                  : ch.desc.read(ch.bch, op->buf.get(), ch.lba(op->grant.src_plus1, op->done_blocks), op->step_blocks,
                                 copy_io_done, op);
  if (st.code() == Errc::busy) {
    ch.copy_retry.push_back(op);
  } else if (!st.ok()) {
    op->status = st.code();
    ch.copy_finish.push_back(op);
  }
}

// Publishes (or abandons) a finished copy and lets its request go on. False: the store lock
// was taken; try again on the next poll.
bool finish_copy(BlobChannel& ch, CopyOp* op) {
  BlobRequest* req = op->req;
  Status st = ch.store.finish_copy(*req->blob, op->index, op->grant, op->status == Errc::ok);
  if (st.code() == Errc::busy) return false;
  const Errc status = op->status;
  op->req = nullptr;
  req->copy = nullptr;
  ch.free_copies.push_front(op);
  if (status != Errc::ok) {
    fail_request(ch, req, status);
  } else {
    ++ch.stats.copies;
    start_request(ch, req, true);  // published, or stale: the request looks again
  }
  return true;
}

}  // namespace

BlobChannel::BlobChannel(Store& s, bdev::BdevChannel* bdev_ch)
    : store(s), desc(s.desc()), bch(bdev_ch), owner(std::this_thread::get_id()), io_unit(s.super().io_unit),
      units_per_cluster(s.io_units_per_cluster()), cluster_shift(shift_of(units_per_cluster)),
      base_lba(s.cluster_lba(0)), buf_align(std::max<uint32_t>(s.desc().geometry().buf_align, 1)),
      has_write_zeroes(s.desc().geometry().supports(bdev::IoType::write_zeroes)),
      copy_chunk_blocks(std::min<uint64_t>(units_per_cluster, kCopyChunkBytes / io_unit)),
      requests(kRequests), copies(kCopies) {
  for (auto& r : requests) {
    r.ch = this;
    free_reqs.push_back(&r);
  }
  for (auto& c : copies) {
    c.ch = this;
    free_copies.push_back(&c);
  }
}

void start_copy(BlobChannel& ch, CopyOp* op) {
  if (!op->buf) {
    const size_t bytes = ch.copy_chunk_blocks * ch.io_unit;
    op->buf.reset(static_cast<char*>(std::aligned_alloc(std::max<size_t>(ch.buf_align, 4096), bytes)));
  }
  op->done_blocks = 0;
  op->writing = false;
  op->status = op->buf ? Errc::ok : Errc::no_space;
  copy_step(ch, op);
}

Result<BlobChannel*> get_blob_channel(Store& store) {
  for (auto& r : t_channels) {
    if (r.store == &store) {
      ++r.ch->refs;
      return r.ch;
    }
  }
  auto bch = store.desc().get_channel();
  if (!bch.ok()) return bch.status();
  auto ch = std::make_unique<BlobChannel>(store, *bch);
  if (!ch->has_write_zeroes) {
    // Zeroes for devices that cannot write them: one chunk, written repeatedly.
    const size_t bytes = ch->copy_chunk_blocks * ch->io_unit;
    ch->zero_buf.reset(static_cast<char*>(std::aligned_alloc(std::max<size_t>(ch->buf_align, 4096), bytes)));
    if (!ch->zero_buf) {
      (void)store.desc().put_channel(*bch);
      return Status(Errc::no_space, "blob channel: out of memory for the zero buffer");
    }
    std::memset(ch->zero_buf.get(), 0, bytes);
  }
  ch->refs = 1;
  t_channels.push_back({&store, ch.get()});
  return ch.release();
}

Status put_blob_channel(Store& store, BlobChannel* ch) {
  auto it = std::find_if(t_channels.begin(), t_channels.end(), [&](const ChannelRef& r) { return r.ch == ch; });
  if (ch == nullptr || it == t_channels.end())
    return Status(Errc::invalid_argument, "put of a blob channel this thread does not own");
  if (&ch->store != &store) return Status(Errc::invalid_argument, "blob channel belongs to another blobstore");
  if (ch->refs > 1) {
    --ch->refs;
    return Status::Ok();
  }
  if (ch->outstanding > 0)
    return Status(Errc::busy, fmt::format("blob channel still has {} request(s) outstanding; poll until they complete",
                                          ch->outstanding));
  if (store.device_released()) {
    // Unloaded while this thread held the channel: the handle is gone, the channel is ours.
    SLUICE_RETURN_IF_ERROR(thread::put_io_channel(ch->bch));
  } else {
    SLUICE_RETURN_IF_ERROR(ch->desc.put_channel(ch->bch));
  }
  t_channels.erase(it);
  delete ch;
  return Status::Ok();
}

int poll_blob_channel(BlobChannel* ch) {
  if (ch == nullptr) return 0;
  int events = bdev::poll(ch->bch);
  // Deferred work, each queue in a batch: whatever is queued again waits for the next poll.
  if (!ch->copy_retry.empty()) {
    auto batch = ch->copy_retry.take_all();
    while (CopyOp* op = batch.pop_front()) copy_step(*ch, op);
  }
  if (!ch->copy_finish.empty()) {
    auto batch = ch->copy_finish.take_all();
    while (CopyOp* op = batch.pop_front()) {
      if (finish_copy(*ch, op)) {
        ++events;
      } else {
        ch->copy_finish.push_back(op);
      }
    }
  }
  if (!ch->held.empty()) {
    auto batch = ch->held.take_all();
    while (BlobRequest* r = batch.pop_front()) start_request(*ch, r, true);
  }
  if (!ch->alloc_wait.empty()) {
    auto batch = ch->alloc_wait.take_all();
    while (BlobRequest* r = batch.pop_front()) start_request(*ch, r, true);
  }
  if (!ch->issue_wait.empty()) {
    auto batch = ch->issue_wait.take_all();
    while (BlobRequest* r = batch.pop_front()) issue_request(*ch, r);
  }
  auto batch = ch->done.take_all();
  while (BlobRequest* r = batch.pop_front()) {
    ++events;
    const bdev::IoCallback cb = r->cb;
    void* arg = r->cb_arg;
    const Errc status = r->status;
    if (status != Errc::ok) ++ch->stats.errors;
    if (r->kind == ReqKind::flush) {
      ++ch->stats.flushes;
    } else {
      ++ch->stats.ops[static_cast<int>(r->kind)];
    }
    r->blob = nullptr;
    ch->free_reqs.push_front(r);  // LIFO: the hottest request is reused first
    --ch->outstanding;
    if (cb) cb(arg, status);
  }
  return events;
}

const BlobChannelStats& blob_channel_stats(const BlobChannel* ch) { return ch->stats; }
uint32_t blob_channel_outstanding(const BlobChannel* ch) { return ch->outstanding; }

}  // namespace sluice::blob
