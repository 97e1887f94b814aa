// A request at the bdev and its reply (Session's I/O half; session.cc has the rest). Runs on
// the connection's reactor: submit to its channel, on completion build the reply header
// and queue it with the read data as a second segment; the slot returns to the pool when
// the reply is out (or dropped with a closed connection).
#include <algorithm>
#include <vector>

#include "env/env.h"
#include "target/nbd/session_impl.h"

namespace sluice::nbd::detail {

uint32_t to_nbd_error(Errc e) {
  switch (e) {
    case Errc::ok: return 0;
    case Errc::invalid_argument:
    case Errc::out_of_range: return proto::kEinval;
    case Errc::no_space: return proto::kEnospc;
    case Errc::permission: return proto::kEperm;
    case Errc::not_supported: return proto::kEnotsup;
    case Errc::aborted: return proto::kEshutdown;
    default: return proto::kEio;
  }
}

bool Session::ensure_buffer(Slot* s, size_t len) {
  if (s->buf_cap >= len) return true;
  env::dma_free(s->buf);
  s->buf = env::dma_alloc(len, buf_align_);
  s->buf_cap = s->buf ? len : 0;
  return s->buf != nullptr;
}

void Session::payload_done() {
  Slot* s = cur_;
  cur_ = nullptr;
  phase_ = Phase::header;
  submit(s);
}

void Session::submit(Slot* s) {
  if (closing_) {  // nobody to answer: finish the slot without touching the bdev
    s->error = proto::kEshutdown;
    reply(s);
    return;
  }
  const uint32_t bs = limits_.block_size;
  const uint64_t lba = s->req.offset / bs, n = s->req.length / bs;
  bdev::BdevDesc& d = *export_->desc;
  auto done = [](void* arg, Errc st) {
    auto* slot = static_cast<Slot*>(arg);
    slot->session->io_done(slot, st);
  };
  const bool flush = s->flush_after || s->req.type == proto::kCmdFlush;
  if (flush && (limits_.read_only || !export_->desc->geometry().supports(bdev::IoType::flush))) {
    // Nothing to flush: a read-only export wrote nothing, and a device without FLUSH
    // has no volatile cache (its writes are durable when they complete).
    reply(s);
    return;
  }
  if (s->req.type == proto::kCmdBlockStatus) {
    block_status(s);
    return;
  }
  Status st;
  if (s->flush_after) {
    st = d.flush(ch_, done, s);
  } else {
    switch (s->req.type) {
      case proto::kCmdRead: st = d.read(ch_, s->buf, lba, n, done, s); break;
      case proto::kCmdWrite: st = d.write(ch_, s->buf, lba, n, done, s); break;
      case proto::kCmdFlush: st = d.flush(ch_, done, s); break;
      case proto::kCmdTrim: st = d.unmap(ch_, lba, n, done, s); break;
      case proto::kCmdWriteZeroes: st = d.write_zeroes(ch_, lba, n, done, s); break;
      default: st = Status(Errc::invalid_argument, "unknown command"); break;
    }
  }
  if (st.ok()) return;
  if (st.code() == Errc::busy) {  // the channel's pool is full: retry when a slot frees
    Status w = bdev::wait_for_room(ch_, &s->wait);
    if (w.ok()) return;
  }
  s->error = to_nbd_error(st.code());
  reply(s);
}

void Session::block_status(Slot* s) {
  const uint64_t bs = limits_.block_size, begin = s->req.offset, end = begin + s->req.length;
  const uint64_t first_lba = begin / bs, end_lba = (end + bs - 1) / bs;
  const bool one = (s->req.flags & proto::kCmdFlagReqOne) != 0;
  auto runs = export_->desc->block_status(ch_, first_lba, end_lba - first_lba, one ? 1 : kMaxStatusExtents);
  if (!runs.ok()) {
    s->error = to_nbd_error(runs.status().code());
  } else if (!ensure_buffer(s, 4 + 8 * runs->size())) {
    s->error = proto::kEnomem;
  } else {
    // Runs are whole blocks from first_lba; extents are bytes from the request's offset and
    // end with it (the first and last may cover part of a block).
    std::vector<proto::Extent> extents;
    extents.reserve(runs->size());
    uint64_t at = begin, lba = first_lba;
    for (const bdev::BlockRun& r : *runs) {
      lba += r.blocks;
      const uint64_t run_end = std::min(end, lba * bs);
      const uint32_t flags = r.hole ? proto::kStateHole | proto::kStateZero : 0;
      extents.push_back({static_cast<uint32_t>(run_end - at), flags});  // < the request's 32-bit length
      at = run_end;
    }
    s->status_len = static_cast<uint32_t>(proto::build_block_status_payload(static_cast<uint8_t*>(s->buf), extents));
  }
  reply(s);
}

void Session::io_done(Slot* s, Errc st) {
  if (st != Errc::ok) {
    s->error = to_nbd_error(st);
  } else if (!s->flush_after && (s->req.flags & proto::kCmdFlagFua) && s->req.type != proto::kCmdRead &&
             s->req.type != proto::kCmdFlush) {
    // The bdev has no FUA: the write, then a flush, before the reply.
    s->flush_after = true;
    submit(s);
    return;
  }
  reply(s);
}

void Session::reply(Slot* s) {
  net::SendItem& it = s->send;
  const bool read = s->req.type == proto::kCmdRead;
  const bool status = s->req.type == proto::kCmdBlockStatus;
  size_t h;
  if (structured_ && (read || status) && s->error != 0) {
    h = proto::build_error_chunk(s->header, s->req.cookie, s->error);
  } else if (structured_ && read) {
    h = proto::build_read_chunk(s->header, s->req.cookie, s->req.offset, s->req.length);
  } else if (structured_ && status) {
    h = proto::build_structured_header(s->header, proto::kReplyFlagDone, proto::kReplyTypeBlockStatus, s->req.cookie,
                                       s->status_len);
  } else {
    h = proto::build_simple_reply(s->header, s->error, s->req.cookie);
  }
  it.iov[0] = {s->header, h};
  it.iovcnt = 1;
  if ((read || status) && s->error == 0) {
    it.iov[1] = {s->buf, read ? s->req.length : s->status_len};
    it.iovcnt = 2;
  }
  conn_.send(&it);  // a closed connection hands it straight back
}

void Session::reply_sent(Slot* s) {
  held_bytes_ -= s->held_bytes;
  s->held_bytes = 0;
  if (s->buf_cap > kKeepBufferBytes) {
    env::dma_free(s->buf);
    s->buf = nullptr;
    s->buf_cap = 0;
  }
  s->next_free = free_;
  free_ = s;
  --in_flight_;
  if (closing_ || disc_) {
    maybe_die();
    return;
  }
  resume();
}

}  // namespace sluice::nbd::detail
