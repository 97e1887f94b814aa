// I/O commands, on the queue pair's reactor: each goes to this queue's channel to the
// namespace's bdev and completes here, without a lock or a message.
//
// Multi-step commands keep their progress in req->state.step: a FUA write (or write zeroes)
// is the write then a FLUSH, as the bdev layer has no FUA of its own; a Compare reads into a
// bounce buffer and compares; Dataset Management deallocates its ranges one after another.
// A busy channel parks the request on wait_for_room() and resubmits the same step.
#include <cstring>

#include "env/env.h"
#include "target/nvmf/nvmf_impl.h"

namespace sluice::nvmf {
namespace {

using detail::NsChannel;

uint16_t status_of(Errc e, uint8_t opc, const NsChannel& nc) {
  switch (e) {
    case Errc::ok: return 0;
    case Errc::out_of_range: return generic_status(sp::kScLbaOutOfRange, true);
    case Errc::invalid_argument: return generic_status(sp::kScInvalidField, true);
    case Errc::not_supported: return generic_status(sp::kScInvalidOpcode, true);
    case Errc::aborted:
      // The bdev was hot-removed: the namespace is going.
      if (nc.ns->desc->bdev().removed()) return generic_status(sp::kScInvalidNamespace, true);
      return generic_status(sp::kScAbortRequested);
    case Errc::io_error:
      return opc == sp::kIoRead || opc == sp::kIoCompare ? sp::make_status(sp::kSctMedia, sp::kScUnrecoveredReadError)
                                                         : sp::make_status(sp::kSctMedia, sp::kScWriteFault);
    default: return generic_status(sp::kScInternalError);
  }
}

uint64_t slba(const sp::Sqe& sqe) { return uint64_t{sqe.cdw11} << 32 | sqe.cdw10; }
uint32_t nlb(const sp::Sqe& sqe) { return (sqe.cdw12 & 0xffff) + 1; }
bool fua(const sp::Sqe& sqe) { return sqe.cdw12 & sp::kRwFua; }

void finish_io(Request* req, uint16_t status) {
  NsChannel* nc = req->state.ns;
  env::dma_free(req->state.compare_buf);
  req->state.compare_buf = nullptr;
  req->cqe.status = status;
  QueuePair::Impl& impl = QueuePair::Impl::of(req);
  --nc->in_flight;
  if (nc->detached) impl.release_if_drained(nc);
  QueuePair::Impl::complete(req);
}

const sp::DsmRange* dsm_range(const Request* req, uint32_t i) {
  return static_cast<const sp::DsmRange*>(req->data) + i;
}
uint32_t dsm_ranges(const sp::Sqe& sqe) { return (sqe.cdw10 & 0xff) + 1; }

void submit(Request* req);

void bdev_done(void* arg, Errc e) {
  auto* req = static_cast<Request*>(arg);
  NsChannel& nc = *req->state.ns;
  const sp::Sqe& sqe = req->sqe;
  if (e != Errc::ok) return finish_io(req, status_of(e, sqe.opc, nc));
  const bool can_flush = nc.ns->geometry.supports(bdev::IoType::flush);
  switch (sqe.opc) {
    case sp::kIoWrite:
    case sp::kIoWriteZeroes:
      if (req->state.step == 0 && fua(sqe) && can_flush) {
        req->state.step = 1;  // the data is written; FUA: make it durable before the completion
        return submit(req);
      }
      break;
    case sp::kIoCompare: {
      const size_t bytes = size_t{nlb(sqe)} * nc.ns->geometry.block_size;
      if (std::memcmp(req->state.compare_buf, req->data, bytes) != 0)
        return finish_io(req, sp::make_status(sp::kSctMedia, sp::kScCompareFailure, true));
      break;
    }
    case sp::kIoDatasetManagement:
      while (++req->state.step < dsm_ranges(sqe))
        if (dsm_range(req, req->state.step)->nlb != 0) return submit(req);
      break;
    default: break;
  }
  finish_io(req, 0);
}

void room_freed(void* arg) { submit(static_cast<Request*>(arg)); }

void submit(Request* req) {
  NsChannel& nc = *req->state.ns;
  bdev::BdevDesc& d = *nc.ns->desc;
  const sp::Sqe& sqe = req->sqe;
  const uint64_t lba = slba(sqe);
  Status st;
  if (req->state.step == 1 && (sqe.opc == sp::kIoWrite || sqe.opc == sp::kIoWriteZeroes)) {
    st = d.flush(nc.ch, bdev_done, req);
  } else {
    switch (sqe.opc) {
      case sp::kIoRead: st = d.read(nc.ch, req->data, lba, nlb(sqe), bdev_done, req); break;
      case sp::kIoWrite: st = d.write(nc.ch, req->data, lba, nlb(sqe), bdev_done, req); break;
      case sp::kIoCompare: st = d.read(nc.ch, req->state.compare_buf, lba, nlb(sqe), bdev_done, req); break;
      case sp::kIoWriteZeroes: st = d.write_zeroes(nc.ch, lba, nlb(sqe), bdev_done, req); break;
      case sp::kIoFlush: st = d.flush(nc.ch, bdev_done, req); break;
      case sp::kIoDatasetManagement: {
        const sp::DsmRange* r = dsm_range(req, req->state.step);
        st = d.unmap(nc.ch, r->slba, r->nlb, bdev_done, req);
        break;
      }
      default: st = Status(Errc::not_supported, "opcode"); break;
    }
  }
  if (st.ok()) return;
  if (st.code() == Errc::busy) {
    req->state.wait.fn = room_freed;
    req->state.wait.arg = req;
    if (bdev::wait_for_room(nc.ch, &req->state.wait).ok()) return;
  }
  finish_io(req, status_of(st.code(), sqe.opc, nc));
}

bool in_range(uint64_t lba, uint64_t blocks, const bdev::Geometry& g) {
  return lba < g.num_blocks && blocks <= g.num_blocks - lba;
}

// The checks before anything reaches the bdev; 0 when the command may go.
uint16_t check(const Request* req, const NsChannel& nc) {
  const sp::Sqe& sqe = req->sqe;
  const bdev::Geometry& g = nc.ns->geometry;
  switch (sqe.opc) {
    case sp::kIoRead:
    case sp::kIoWrite:
    case sp::kIoCompare:
      if (!in_range(slba(sqe), nlb(sqe), g)) return generic_status(sp::kScLbaOutOfRange, true);
      if (req->data == nullptr || req->length < uint64_t{nlb(sqe)} * g.block_size)
        return generic_status(sp::kScDataSglLengthInvalid, true);
      if (sqe.opc == sp::kIoWrite && !nc.ns->desc->writable()) return generic_status(sp::kScInvalidOpcode, true);
      return 0;
    case sp::kIoWriteZeroes:
      if (!in_range(slba(sqe), nlb(sqe), g)) return generic_status(sp::kScLbaOutOfRange, true);
      if (!g.supports(bdev::IoType::write_zeroes)) return generic_status(sp::kScInvalidOpcode, true);
      return 0;
    case sp::kIoFlush: return 0;
    case sp::kIoDatasetManagement: {
      const uint32_t n = dsm_ranges(sqe);
      if (req->data == nullptr || req->length < n * sizeof(sp::DsmRange))
        return generic_status(sp::kScDataSglLengthInvalid, true);
      for (uint32_t i = 0; i < n; ++i) {
        const sp::DsmRange* r = dsm_range(req, i);
        if (!in_range(r->slba, r->nlb, g)) return generic_status(sp::kScLbaOutOfRange, true);
      }
      return 0;
    }
    default: return generic_status(sp::kScInvalidOpcode, true);
  }
}

}  // namespace

void QueuePair::Impl::execute_io(Request* req) {
  const sp::Sqe& sqe = req->sqe;
  auto refuse = [&](uint16_t status) {
    req->cqe.status = status;
    complete(req);
  };
  if (sqe.flags & 0x3) return refuse(generic_status(sp::kScInvalidField, true));  // no fused commands
  const uint32_t nsid = sqe.nsid;
  detail::NsChannel* nc = nsid != 0 && nsid <= namespaces.size() ? namespaces[nsid - 1].get() : nullptr;
  if (nc == nullptr) return refuse(generic_status(sp::kScInvalidNamespace, true));
  if (const uint16_t st = check(req, *nc); st != 0) return refuse(st);
  if (nc->ch == nullptr) {  // the queue's first I/O to this namespace
    auto ch = nc->ns->desc->get_channel();
    if (!ch.ok()) return refuse(generic_status(sp::kScInternalError));
    nc->ch = ch.value();
  }
  req->state.ns = nc;
  ++nc->in_flight;
  const bdev::Geometry& g = nc->ns->geometry;
  if (sqe.opc == sp::kIoFlush && !g.supports(bdev::IoType::flush)) return finish_io(req, 0);  // nothing cached
  if (sqe.opc == sp::kIoDatasetManagement) {
    // Only deallocation does anything; on a device without unmap it is a hint we may ignore.
    uint32_t first = 0;
    while (first < dsm_ranges(sqe) && dsm_range(req, first)->nlb == 0) ++first;
    if (!(sqe.cdw11 & sp::kDsmDeallocate) || !g.supports(bdev::IoType::unmap) || first == dsm_ranges(sqe))
      return finish_io(req, 0);
    req->state.step = static_cast<uint16_t>(first);
  }
  if (sqe.opc == sp::kIoCompare) {
    req->state.compare_buf = env::dma_alloc(size_t{nlb(sqe)} * g.block_size);
    if (req->state.compare_buf == nullptr) return finish_io(req, generic_status(sp::kScInternalError));
  }
  submit(req);
}

}  // namespace sluice::nvmf
