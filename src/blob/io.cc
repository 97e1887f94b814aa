// The blob data path, request side: validation, first-write allocation, the freeze gate,
// splitting into per-cluster pieces and completion. The design is described in io.h.
#include "blob/io.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "blob/blob_channel.h"

namespace sluice::blob {
namespace {

bool is_write(ReqKind k) { return k == ReqKind::write || k == ReqKind::write_zeroes; }

// Whether blob cluster `index` must be allocated before this request may write it.
bool needs_cluster(BlobChannel& ch, const BlobRequest& req, uint64_t index) {
  const BlobMeta& m = req.blob->meta();
  if (m.extents.get(index) != 0) return false;
  // Zeroes over a cluster that reads as zeroes anyway: nothing to do.
  return !(req.kind == ReqKind::write_zeroes && ch.store.resolve_read(m, index) == 0);
}

uint64_t last_cluster(const BlobChannel& ch, const BlobRequest& req) {
  return ch.cluster_of(req.offset + req.length - 1);
}

bool covers_cluster(const BlobChannel& ch, const BlobRequest& req, uint64_t index) {
  const uint64_t first = index * ch.units_per_cluster;
  return req.offset <= first && req.offset + req.length >= first + ch.units_per_cluster;
}

// Makes every cluster the request writes allocated. False when the request had to wait (it
// is queued, or drives a copy) or failed (it is completed).
bool advance_alloc(BlobChannel& ch, BlobRequest* req, bool in_poll) {
  Blob& blob = *req->blob;
  const uint64_t last = last_cluster(ch, *req);
  while (req->alloc_next <= last) {
    const uint64_t i = req->alloc_next;
    if (!needs_cluster(ch, *req, i)) {
      ++req->alloc_next;
      continue;
    }
    if (req->wait_epoch_valid) {
      if (ch.store.alloc_epoch() == req->wait_epoch) {
        ch.alloc_wait.push_back(req);  // another request's copy of this cluster still runs
        return false;
      }
      req->wait_epoch_valid = false;
    }
    const bool whole = req->kind == ReqKind::write_zeroes && covers_cluster(ch, *req, i);
    // A copy slot, when the cluster would be copied (the store re-checks under its lock).
    CopyOp* op = nullptr;
    if (!whole && ch.store.resolve_read(blob.meta(), i) != 0) {
      op = ch.free_copies.pop_front();
      if (op == nullptr) {
        ch.alloc_wait.push_back(req);
        return false;
      }
    }
    Store::AllocGrant grant;
    auto r = ch.store.try_allocate(blob, i, whole, op != nullptr, in_poll, &grant);
    if (!r.ok() || *r != Store::AllocState::copy) {
      if (op) ch.free_copies.push_front(op);
    }
    if (!r.ok()) {
      fail_request(ch, req, r.status().code());
      return false;
    }
    switch (*r) {
      case Store::AllocState::done:
        if (grant.allocated) ++ch.stats.allocations;
        ++req->alloc_next;
        continue;
      case Store::AllocState::copy:
        op->req = req;
        op->index = i;
        op->grant = grant;
        req->copy = op;
        start_copy(ch, op);  // the request resumes when the copy is published
        return false;
      case Store::AllocState::copying:
        req->wait_epoch = grant.epoch;
        req->wait_epoch_valid = true;
        ch.alloc_wait.push_back(req);
        return false;
      case Store::AllocState::retry:
        ch.alloc_wait.push_back(req);
        return false;
    }
  }
  return true;
}

// The first cluster of a write that lost its allocation since advance_alloc (a snapshot moved
// it), or UINT64_MAX.
uint64_t first_missing(BlobChannel& ch, const BlobRequest& req) {
  const uint64_t last = last_cluster(ch, req);
  for (uint64_t i = ch.cluster_of(req.offset); i <= last; ++i)
    if (needs_cluster(ch, req, i)) return i;
  return UINT64_MAX;
}

// The freeze gate (store.h): counted in in_flight first, then `frozen` checked (seq_cst).
// False: the blob is frozen, hold the request.
bool enter_gate(BlobChannel& ch, BlobRequest* req) {
  Blob& blob = *req->blob;
  // A cheap early look, so held requests retried on every poll leave the counter alone.
  if (blob.frozen.load(std::memory_order_relaxed)) return false;
  GateRef* slot = nullptr;
  for (GateRef& g : ch.gates) {
    if (g.blob == &blob) {
      // This channel's count is held: a freezer cannot have seen in_flight drain.
      if (blob.frozen.load()) return false;
      ++g.count;
      req->gate = &g;
      req->gated = true;
      return true;
    }
    if (g.blob == nullptr && slot == nullptr) slot = &g;
  }
  blob.in_flight.fetch_add(1);
  if (blob.frozen.load()) {
    blob.in_flight.fetch_sub(1);
    return false;
  }
  if (slot) {
    slot->blob = &blob;
    slot->count = 1;
  }
  req->gate = slot;
  req->gated = true;
  return true;
}

void leave_gate(BlobRequest* req) {
  req->gated = false;
  if (GateRef* g = req->gate) {
    req->gate = nullptr;
    if (--g->count != 0) return;
    g->blob = nullptr;
  }
  req->blob->in_flight.fetch_sub(1);
}

void complete(BlobChannel& ch, BlobRequest* req) {
  if (req->gated) leave_gate(req);
  ch.done.push_back(req);
}

void piece_done(void* arg, Errc status) {
  auto* req = static_cast<BlobRequest*>(arg);
  if (status != Errc::ok && req->status == Errc::ok) req->status = status;
  if (--req->pieces == 0 && !req->issue_parked && (req->issued == req->length || req->status != Errc::ok))
    complete(*req->ch, req);
}

// Moves the buffer cursor forward by `bytes`, zero-filling what it passes when `zero`.
void advance(BlobRequest* req, size_t bytes, bool zero) {
  while (bytes > 0) {
    const iovec& v = req->iovs[req->seg];
    const size_t step = std::min(v.iov_len - req->seg_off, bytes);
    if (zero) std::memset(static_cast<char*>(v.iov_base) + req->seg_off, 0, step);
    req->seg_off += step;
    bytes -= step;
    if (req->seg_off == v.iov_len) {
      ++req->seg;
      req->seg_off = 0;
    }
  }
}

// The buffer slice for the next `*units` io units, at most kInlineIovs segments (the bdev
// copies that many; longer slices are cut at the last whole unit and continue as another
// piece). Returns the segment count; 0 when not even one unit fits (too fragmented).
int slice(BlobChannel& ch, const BlobRequest& req, uint64_t* units, iovec* out) {
  const size_t want = *units * ch.io_unit;
  size_t got = 0, off = req.seg_off;
  int seg = req.seg, n = 0;
  while (got < want && n < BlobRequest::kInlineIovs) {
    const size_t take = std::min(req.iovs[seg].iov_len - off, want - got);
    out[n++] = {static_cast<char*>(req.iovs[seg].iov_base) + off, take};
    got += take;
    off += take;
    if (off == req.iovs[seg].iov_len) {
      ++seg;
      off = 0;
    }
  }
  if (got == want) return n;
  size_t excess = got % ch.io_unit;
  *units = got / ch.io_unit;
  if (*units == 0) return 0;
  while (excess > 0) {
    iovec& tail = out[n - 1];
    if (tail.iov_len <= excess) {
      excess -= tail.iov_len;
      --n;
    } else {
      tail.iov_len -= excess;
      excess = 0;
    }
  }
  return n;
}

Status submit_piece(BlobChannel& ch, BlobRequest* req, uint64_t lba, uint64_t* units) {
  if (req->kind == ReqKind::write_zeroes) {
    if (ch.has_write_zeroes) return ch.desc.write_zeroes(ch.bch, lba, *units, piece_done, req);
    // The device cannot zero: write from a shared zero buffer.
    iovec v[BlobRequest::kInlineIovs];
    const uint64_t per_seg = ch.copy_chunk_blocks;
    *units = std::min<uint64_t>(*units, per_seg * BlobRequest::kInlineIovs);
    int n = 0;
    for (uint64_t left = *units; left > 0; left -= std::min(left, per_seg))
      v[n++] = {ch.zero_buf.get(), std::min(left, per_seg) * ch.io_unit};
    return ch.desc.writev(ch.bch, v, n, lba, *units, piece_done, req);
  }
  if (req->issued == 0 && *units == req->length && req->iovcnt <= BlobRequest::kInlineIovs) {
    // The whole request in one piece (the common case): its own segments, as they are.
    return req->kind == ReqKind::read ? ch.desc.readv(ch.bch, req->iovs, req->iovcnt, lba, *units, piece_done, req)
                                      : ch.desc.writev(ch.bch, req->iovs, req->iovcnt, lba, *units, piece_done, req);
  }
  iovec v[BlobRequest::kInlineIovs];
  const int n = slice(ch, *req, units, v);
  if (n == 0) return Status(Errc::invalid_argument, {});
  Status st = req->kind == ReqKind::read ? ch.desc.readv(ch.bch, v, n, lba, *units, piece_done, req)
                                         : ch.desc.writev(ch.bch, v, n, lba, *units, piece_done, req);
  if (st.ok()) advance(req, *units * ch.io_unit, false);
  return st;
}

}  // namespace

void fail_request(BlobChannel& ch, BlobRequest* req, Errc status) {
  if (req->status == Errc::ok) req->status = status;
  if (req->pieces == 0) complete(ch, req);
}

void start_request(BlobChannel& ch, BlobRequest* req, bool in_poll) {
  for (;;) {
    if (is_write(req->kind) && !advance_alloc(ch, req, in_poll)) return;
    if (!enter_gate(ch, req)) {
      ++ch.stats.held;
      ch.held.push_back(req);
      return;
    }
    if (is_write(req->kind)) {
      const uint64_t missing = first_missing(ch, *req);
      if (missing != UINT64_MAX) {
        leave_gate(req);
        req->alloc_next = missing;
        continue;
      }
    }
    issue_request(ch, req);
    return;
  }
}

void issue_request(BlobChannel& ch, BlobRequest* req) {
  req->issue_parked = false;
  if (req->kind == ReqKind::flush) {
    Status st = ch.desc.flush(ch.bch, piece_done, req);
    if (st.ok()) {
      ++req->pieces;
      req->issued = req->length;
    } else if (st.code() == Errc::busy) {
      req->issue_parked = true;
      ch.issue_wait.push_back(req);
    } else {
      fail_request(ch, req, st.code());
    }
    return;
  }
  const BlobMeta& m = req->blob->meta();
  while (req->issued < req->length && req->status == Errc::ok) {
    const uint64_t unit = req->offset + req->issued;
    const uint64_t cluster = ch.cluster_of(unit);
    const uint64_t in_cluster = unit - cluster * ch.units_per_cluster;
    uint64_t units = std::min(ch.units_per_cluster - in_cluster, req->length - req->issued);
    uint32_t v = m.extents.get(cluster);
    if (v == 0 && req->kind != ReqKind::write) {
      v = ch.store.resolve_read(m, cluster);  // an ancestor's, or 0: reads as zeroes
      if (v == 0) {
        // A read answers zeroes from memory; zeroes over zeroes need no write.
        if (req->kind == ReqKind::read) {
          advance(req, units * ch.io_unit, true);
          ++ch.stats.zero_fills;
        }
        req->issued += units;
        continue;
      }
      if (req->kind == ReqKind::write_zeroes) v = 0;  // must not zero the ancestor's cluster
    }
    if (v == 0) {
      // Writes allocated before the gate, and nothing moves clusters under it: only a shrink.
      req->status = cluster >= m.size.load(std::memory_order_relaxed) ? Errc::out_of_range : Errc::aborted;
      break;
    }
    Status st = submit_piece(ch, req, ch.lba(v, in_cluster), &units);
    if (!st.ok()) {
      if (st.code() == Errc::busy) {
        req->issue_parked = true;
        ch.issue_wait.push_back(req);
        return;
      }
      req->status = st.code();
      break;
    }
    ++req->pieces;
    req->issued += units;
  }
  if (req->pieces == 0) complete(ch, req);
}

Status blob_submit(Store& store, BlobChannel* ch, Blob& blob, BlobOp op, const iovec* iov, int iovcnt,
                   uint64_t offset, uint64_t length, bdev::IoCallback cb, void* arg) {
  if (ch == nullptr || &ch->store != &store) [[unlikely]]
    return Status(Errc::invalid_argument, "blob channel is null or belongs to another blobstore");
  if (ch->owner != std::this_thread::get_id()) [[unlikely]]
    return Status(Errc::invalid_argument, "blob channel belongs to another thread; get this thread's own");
  const BlobMeta& m = blob.meta();
  if (length == 0) [[unlikely]]
    return Status(Errc::invalid_argument, fmt::format("blob {}: I/O of zero units", m.id));
  const uint64_t size = m.size.load(std::memory_order_relaxed) * ch->units_per_cluster;
  if (offset >= size || length > size - offset) [[unlikely]]
    return Status(Errc::out_of_range, fmt::format("blob {}: units [{}, +{}) beyond its end ({} units of {} bytes)", m.id,
                                                  offset, length, size, ch->io_unit));
  if (op != BlobOp::read && m.read_only()) [[unlikely]]
    return Status(Errc::permission, fmt::format("blob {} is read-only", m.id));
  if (op != BlobOp::write_zeroes) {
    if (iov == nullptr || iovcnt <= 0) [[unlikely]]
      return Status(Errc::invalid_argument, fmt::format("blob {}: no buffer given", m.id));
    uint64_t total = 0;
    for (int i = 0; i < iovcnt; ++i) {
      const auto addr = reinterpret_cast<uintptr_t>(iov[i].iov_base);
      if (iov[i].iov_base == nullptr || ((addr | iov[i].iov_len) & (ch->buf_align - 1)) != 0) [[unlikely]]
        return Status(Errc::invalid_argument,
                      fmt::format("blob {}: buffer segment {} ({:#x}, {} bytes) is null or not aligned to {} bytes", m.id,
                                  i, addr, iov[i].iov_len, ch->buf_align));
      total += iov[i].iov_len;
    }
    if (total != length * ch->io_unit) [[unlikely]]
      return Status(Errc::invalid_argument, fmt::format("blob {}: buffer holds {} bytes but {} units of {} need {}", m.id,
                                                        total, length, ch->io_unit, length * ch->io_unit));
  }
  BlobRequest* req = ch->free_reqs.pop_front();
  if (req == nullptr) [[unlikely]] {
    ++ch->stats.busy;
    return Status(Errc::busy, {});
  }
  ++ch->outstanding;
  req->blob = &blob;
  req->kind = static_cast<ReqKind>(op);
  req->status = Errc::ok;
  req->gated = req->issue_parked = req->wait_epoch_valid = false;
  req->offset = offset;
  req->length = length;
  req->cb = cb;
  req->cb_arg = arg;
  if (op == BlobOp::write_zeroes) {
    req->iovs = nullptr;
    req->iovcnt = 0;
  } else if (iovcnt == 1) {
    req->iov_storage[0] = iov[0];
    req->iovs = req->iov_storage;
    req->iovcnt = 1;
  } else if (iovcnt <= BlobRequest::kInlineIovs) {
    std::copy(iov, iov + iovcnt, req->iov_storage);
    req->iovs = req->iov_storage;
    req->iovcnt = iovcnt;
  } else {
    req->iovs = iov;
    req->iovcnt = iovcnt;
  }
  req->alloc_next = ch->cluster_of(offset);
  req->copy = nullptr;
  req->gate = nullptr;
  req->issued = 0;
  req->seg = 0;
  req->seg_off = 0;
  req->pieces = 0;
  start_request(*ch, req, false);
  return Status::Ok();
}

Status blob_flush(Store& store, BlobChannel* ch, bdev::IoCallback cb, void* arg) {
  if (ch == nullptr || &ch->store != &store) [[unlikely]]
    return Status(Errc::invalid_argument, "blob channel is null or belongs to another blobstore");
  if (ch->owner != std::this_thread::get_id()) [[unlikely]]
    return Status(Errc::invalid_argument, "blob channel belongs to another thread; get this thread's own");
  BlobRequest* req = ch->free_reqs.pop_front();
  if (req == nullptr) [[unlikely]] {
    ++ch->stats.busy;
    return Status(Errc::busy, {});
  }
  ++ch->outstanding;
  req->blob = nullptr;
  req->kind = ReqKind::flush;
  req->status = Errc::ok;
  req->gated = req->issue_parked = req->wait_epoch_valid = false;
  req->offset = 0;
  req->length = 1;
  req->issued = 0;
  req->pieces = 0;
  req->copy = nullptr;
  req->gate = nullptr;
  req->cb = cb;
  req->cb_arg = arg;
  issue_request(*ch, req);
  return Status::Ok();
}

}  // namespace sluice::blob
