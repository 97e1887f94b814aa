// I/O queue pairs: submission with batched doorbells, polled completions (phase bit), PRP
// lists, bounce buffers for memory the device cannot reach, per-command timeouts with
// abort-then-reset escalation, and reconnection after a controller reset. Over a fabric the
// rings and PRPs give way to the queue's connection (tcp_queue.h); the rest is the same.
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/barrier.h"
#include "base/clock.h"
#include "base/log.h"
#include "env/env.h"
#include "nvme/fabrics_device.h"
#include "nvme/nvme.h"
#include "nvme/tcp_queue.h"

namespace sluice::nvme {
namespace {

using spec::kPage;
constexpr uint32_t kPrpPerPage = kPage / 8;  // 512; the last one chains when more follow
constexpr uint32_t kMaxDsmRanges = 256;
constexpr uint64_t kTimeoutCheckMs = 1;  // how often poll() looks for expired commands

// List pages needed for `n` PRP list entries (each page but the last gives one to the chain).
uint32_t list_pages_for(uint64_t n) {
  if (n <= kPrpPerPage) return 1;
  return 1 + static_cast<uint32_t>((n - kPrpPerPage + kPrpPerPage - 2) / (kPrpPerPage - 1));
}

uint64_t ms_to_ticks(uint64_t ms) { return static_cast<uint64_t>(clock::ticks_per_second() * static_cast<double>(ms) / 1000.0); }

}  // namespace

struct IoQueue::Slot {
  IoQueue* owner = nullptr;
  uint16_t wire_cid = 0;  // fabrics: the CID its connection gave it (what Abort names)
  CommandCallback cb = nullptr;
  void* arg = nullptr;
  uint64_t deadline = 0;  // ticks; 0: none
  uint16_t cid = 0;
  bool busy = false;
  bool timed_out = false;
  bool bounce_read = false;
  void* bounce = nullptr;  // DMA copy of the caller's buffers
  size_t bounce_len = 0;
  const iovec* user_iov = nullptr;
  int user_iovcnt = 0;
  uint64_t* prp = nullptr;  // this slot's PRP list pages (also DSM ranges)
};

Result<std::unique_ptr<IoQueue>> Controller::create_io_queue(uint32_t entries) {
  if (shut_down_ || failed()) return Status(Errc::io_error, fmt::format("nvme {}: the controller is not usable", info_.bdf));
  if (entries == 0) entries = options_.io_queue_entries;
  entries = std::clamp<uint32_t>(entries, 2, std::min<uint32_t>(info_.max_queue_entries, 65536));
  auto qid = take_qid();
  if (!qid.ok()) return qid.status();
  std::unique_ptr<IoQueue> q(new IoQueue(shared_from_this(), *qid, entries));
  Status st = q->init();
  if (st.ok()) st = q->connect();
  if (!st.ok()) return Status(st.code(), fmt::format("nvme {}: I/O queue {}: {}", info_.bdf, *qid, st.message()));
  return q;
}

IoQueue::IoQueue(std::shared_ptr<Controller> ctrl, uint16_t qid, uint32_t entries)
    : ctrl_(std::move(ctrl)), qid_(qid), entries_(entries) {
  sq_doorbell_ = spec::sq_doorbell(qid_, ctrl_->dstrd_);
  cq_doorbell_ = spec::cq_doorbell(qid_, ctrl_->dstrd_);
  set_timeout_ms(ctrl_->options().io_timeout_ms);
}

IoQueue::~IoQueue() {
  if (connected_ && !tcp_ && !ctrl_->failed() && ctrl_->generation() == generation_) {
    Status st = ctrl_->delete_queue_pair(qid_);
    if (!st.ok()) log::warn("nvme {}: {}", ctrl_->info().bdf, st.to_string());
  }
  for (Slot& s : slots_) env::dma_free(s.bounce);
  ctrl_->give_qid(qid_);
  env::dma_free(sq_);
  env::dma_free(cq_);
  env::dma_free(prp_area_);
}

void IoQueue::set_timeout_ms(uint64_t ms) { timeout_ticks_ = ms == 0 ? 0 : ms_to_ticks(ms); }

Status IoQueue::init() {
  const bool fabrics = ctrl_->device().fabrics() != nullptr;
  if (!fabrics) {
    sq_ = static_cast<spec::Sqe*>(env::dma_zalloc(entries_ * sizeof(spec::Sqe)));
    cq_ = static_cast<spec::Cqe*>(env::dma_zalloc(entries_ * sizeof(spec::Cqe)));
    if (sq_ == nullptr || cq_ == nullptr) return Status(Errc::no_space, "no DMA memory for the queue");
  }
  const uint64_t max_pages = ctrl_->info().max_transfer_bytes / kPage + 1;  // +1: an unaligned start
  // Over a fabric a slot's page only holds Dataset Management ranges.
  prp_pages_per_slot_ = fabrics ? 1 : list_pages_for(max_pages - 1);
  const uint32_t slots = entries_ - 1;
  prp_area_ = static_cast<uint8_t*>(env::dma_zalloc(size_t{slots} * prp_pages_per_slot_ * kPage));
  if (prp_area_ == nullptr) return Status(Errc::no_space, "no DMA memory for the queue");
  for (const NamespaceInfo& ns : ctrl_->namespaces()) block_sizes_.emplace_back(ns.nsid, ns.block_size);
  slots_.resize(slots);
  free_cids_.reserve(slots);
  for (uint32_t i = 0; i < slots; ++i) {
    slots_[i].cid = static_cast<uint16_t>(i);
    slots_[i].owner = this;
    slots_[i].prp = reinterpret_cast<uint64_t*>(prp_area_ + size_t{i} * prp_pages_per_slot_ * kPage);
    free_cids_.push_back(static_cast<uint16_t>(slots - 1 - i));  // hand out cid 0 first
  }
  return Status::Ok();
}

Status IoQueue::connect() {
  generation_ = ctrl_->generation();
  if (FabricsDevice* f = ctrl_->device().fabrics()) {
    // Started, not waited for: this may be a reactor making a channel. Commands wait (busy)
    // until the Connect that poll() carries on completes.
    const ControllerInfo& info = ctrl_->info();
    auto q = f->start_io_queue(entries_, info.in_capsule_bytes, info.max_transfer_bytes);
    if (!q.ok()) return q.status();
    tcp_ = std::move(q.value());
    const Errc e = tcp_->submit_connect(qid_, f->target().subnqn, f->target().hostnqn, f->cntlid(), 0,
                                        fabrics_connected, this);
    if (e != Errc::ok) return Status(e, "queuing Connect");
    fabrics_connecting_ = true;
    return Status::Ok();
  }
  auto sq = env::dma_translate_checked(sq_, entries_ * sizeof(spec::Sqe));
  if (!sq.ok()) return sq.status();
  auto cq = env::dma_translate_checked(cq_, entries_ * sizeof(spec::Cqe));
  if (!cq.ok()) return cq.status();
  const uint64_t sq_iova = ctrl_->device().translate(sq_), cq_iova = ctrl_->device().translate(cq_);
  if (sq_iova == env::kDmaBadIova || cq_iova == env::kDmaBadIova)
    return Status(Errc::io_error, "queue memory has no device address");
  SLUICE_RETURN_IF_ERROR(ctrl_->create_queue_pair(qid_, entries_, sq_iova, cq_iova));
  connected_ = true;
  return Status::Ok();
}

IoQueue::Slot* IoQueue::take_slot() {
  if (free_cids_.empty() || (sq_tail_ + 1) % entries_ == sq_head_) return nullptr;
  Slot* s = &slots_[free_cids_.back()];
  free_cids_.pop_back();
  return s;
}

Errc IoQueue::push(Slot& slot, spec::Sqe& sqe, CommandCallback cb, void* arg, const iovec* iov, int iovcnt) {
  slot.busy = true;
  slot.cb = cb;
  slot.arg = arg;
  slot.timed_out = false;
  slot.deadline = timeout_ticks_ != 0 ? clock::ticks() + timeout_ticks_ : 0;
  sqe.cid = slot.cid;
  if (tcp_) {
    const Errc e = tcp_->submit(sqe, iov, iovcnt, fabrics_done, &slot, &slot.wire_cid);
    if (e != Errc::ok) {
      slot.busy = false;
      free_cids_.push_back(slot.cid);
      return e;
    }
  } else {
    std::memcpy(&sq_[sq_tail_], &sqe, sizeof sqe);
    if (++sq_tail_ == entries_) sq_tail_ = 0;
    tail_dirty_ = true;
  }
  ++outstanding_;
  ++stats_.submitted;
  return Errc::ok;
}

void IoQueue::fabrics_done(void* arg, const Completion& c) {
  auto* slot = static_cast<Slot*>(arg);
  slot->owner->finish(*slot, c);
}

void IoQueue::fabrics_connected(void* arg, const Completion& c) {
  auto* q = static_cast<IoQueue*>(arg);
  q->fabrics_connecting_ = false;
  const FabricsDevice* f = q->ctrl_->device().fabrics();
  Status st = q->tcp_->connect_status(c, q->qid_, f->target().subnqn, f->target().hostnqn);
  q->connected_ = st.ok();
  if (!st.ok()) log::error("nvme {}: queue {}: {}", q->ctrl_->info().bdf, q->qid_, st.to_string());
}

// PRP entries for `bytes` of `iov`, straight from the caller's memory when the device can
// reach it and the segments meet the PRP rules (first segment dword-aligned, every segment
// boundary on a page boundary); otherwise through one bounce buffer.
Errc IoQueue::build_prps(Slot& slot, spec::Sqe& sqe, const iovec* iov, int iovcnt, size_t bytes) {
  const PciDevice& dev = ctrl_->device();
  size_t total = 0;
  bool direct = iovcnt > 0;
  for (int i = 0; i < iovcnt; ++i) {
    const auto a = reinterpret_cast<uintptr_t>(iov[i].iov_base);
    const size_t len = iov[i].iov_len;
    total += len;
    if (len == 0) return Errc::invalid_argument;
    if (!direct) continue;
    if (i == 0 ? (a & 3) != 0 : (a % kPage) != 0) direct = false;
    if (i + 1 < iovcnt && (a + len) % kPage != 0) direct = false;
    for (uintptr_t p = a; direct && p < a + len; p = (p / kPage + 1) * kPage)
      if (dev.translate(reinterpret_cast<const void*>(p)) == env::kDmaBadIova) direct = false;
  }
  if (total != bytes) return Errc::invalid_argument;

  iovec bounce_iov;
  if (!direct) {
    void* b = env::dma_alloc(bytes);
    if (b == nullptr) return Errc::no_space;
    if (sqe.opc == spec::kIoWrite) {
      size_t off = 0;
      for (int i = 0; i < iovcnt; ++i) {
        std::memcpy(static_cast<uint8_t*>(b) + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
      }
    }
    slot.bounce = b;
    slot.bounce_len = bytes;
    slot.bounce_read = sqe.opc == spec::kIoRead;
    slot.user_iov = iov;
    slot.user_iovcnt = iovcnt;
    ++stats_.bounces;
    bounce_iov = {b, bytes};
    iov = &bounce_iov;
    iovcnt = 1;
  }

  // Emit one address per page touched: PRP1 (may carry an offset), then page addresses.
  uint64_t pages = 0;
  for (int i = 0; i < iovcnt; ++i) {
    const auto a = reinterpret_cast<uintptr_t>(iov[i].iov_base);
    pages += (a % kPage + iov[i].iov_len + kPage - 1) / kPage;
  }
  const uint64_t list_entries = pages - 1;
  const uint32_t list_pages = list_pages_for(list_entries);
  if (list_entries > 1 && list_pages > prp_pages_per_slot_) return Errc::invalid_argument;
  uint64_t index = 0;  // pages emitted
  for (int i = 0; i < iovcnt; ++i) {
    const auto a = reinterpret_cast<uintptr_t>(iov[i].iov_base);
    for (uintptr_t p = a; p < a + iov[i].iov_len; p = (p / kPage + 1) * kPage, ++index) {
      const uint64_t iova = dev.translate(reinterpret_cast<const void*>(p));
      if (index == 0) {
        sqe.prp1 = iova;
      } else if (list_entries == 1) {
        sqe.prp2 = iova;
      } else {
        const uint64_t e = index - 1;
        const uint64_t page = std::min<uint64_t>(e / (kPrpPerPage - 1), list_pages - 1);
        slot.prp[page * kPrpPerPage + (e - page * (kPrpPerPage - 1))] = iova;
      }
    }
  }
  if (list_entries > 1) {
    for (uint32_t p = 0; p + 1 < list_pages; ++p)
      slot.prp[p * kPrpPerPage + kPrpPerPage - 1] = dev.translate(slot.prp + size_t{p + 1} * kPrpPerPage);
    sqe.prp2 = dev.translate(slot.prp);
  }
  return Errc::ok;
}

Errc IoQueue::submit_rw(uint8_t opc, uint32_t nsid, const iovec* iov, int iovcnt, uint64_t lba, uint32_t nlb,
                        CommandCallback cb, void* arg) {
  if (fabrics_connecting_) return Errc::busy;  // Connect is on its way
  if (!connected_) return Errc::io_error;
  if (nlb == 0 || nlb > 65536 || iovcnt <= 0) return Errc::invalid_argument;
  uint32_t bs = 0;
  for (const auto& [id, size] : block_sizes_)
    if (id == nsid) bs = size;
  if (bs == 0) return Errc::invalid_argument;
  const size_t bytes = size_t{nlb} * bs;
  if (bytes > ctrl_->info().max_transfer_bytes) return Errc::invalid_argument;
  Slot* slot = take_slot();
  if (slot == nullptr) return Errc::busy;
  spec::Sqe sqe = {};
  sqe.opc = opc;
  sqe.nsid = nsid;
  sqe.cdw10 = static_cast<uint32_t>(lba);
  sqe.cdw11 = static_cast<uint32_t>(lba >> 32);
  sqe.cdw12 = nlb - 1;
  if (tcp_) {  // the connection sends from (or receives into) the caller's segments as they are
    size_t total = 0;
    for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
    if (total != bytes) {
      free_cids_.push_back(slot->cid);
      return Errc::invalid_argument;
    }
    return push(*slot, sqe, cb, arg, iov, iovcnt);
  }
  Errc e = build_prps(*slot, sqe, iov, iovcnt, bytes);
  if (e != Errc::ok) {
    env::dma_free(slot->bounce);
    slot->bounce = nullptr;
    free_cids_.push_back(slot->cid);
    return e;
  }
  return push(*slot, sqe, cb, arg);
}

Errc IoQueue::read(uint32_t nsid, const iovec* iov, int iovcnt, uint64_t lba, uint32_t nlb, CommandCallback cb, void* arg) {
  return submit_rw(spec::kIoRead, nsid, iov, iovcnt, lba, nlb, cb, arg);
}

Errc IoQueue::write(uint32_t nsid, const iovec* iov, int iovcnt, uint64_t lba, uint32_t nlb, CommandCallback cb, void* arg) {
  return submit_rw(spec::kIoWrite, nsid, iov, iovcnt, lba, nlb, cb, arg);
}

Errc IoQueue::flush(uint32_t nsid, CommandCallback cb, void* arg) {
  if (fabrics_connecting_) return Errc::busy;  // Connect is on its way
  if (!connected_) return Errc::io_error;
  Slot* slot = take_slot();
  if (slot == nullptr) return Errc::busy;
  spec::Sqe sqe = {};
  sqe.opc = spec::kIoFlush;
  sqe.nsid = nsid;
  return push(*slot, sqe, cb, arg);
}

Errc IoQueue::write_zeroes(uint32_t nsid, uint64_t lba, uint32_t nlb, CommandCallback cb, void* arg) {
  if (fabrics_connecting_) return Errc::busy;  // Connect is on its way
  if (!connected_) return Errc::io_error;
  if (nlb == 0 || nlb > 65536) return Errc::invalid_argument;
  Slot* slot = take_slot();
  if (slot == nullptr) return Errc::busy;
  spec::Sqe sqe = {};
  sqe.opc = spec::kIoWriteZeroes;
  sqe.nsid = nsid;
  sqe.cdw10 = static_cast<uint32_t>(lba);
  sqe.cdw11 = static_cast<uint32_t>(lba >> 32);
  sqe.cdw12 = nlb - 1;
  return push(*slot, sqe, cb, arg);
}

Errc IoQueue::deallocate(uint32_t nsid, const spec::DsmRange* ranges, uint32_t count, CommandCallback cb, void* arg) {
  if (fabrics_connecting_) return Errc::busy;  // Connect is on its way
  if (!connected_) return Errc::io_error;
  if (count == 0 || count > kMaxDsmRanges) return Errc::invalid_argument;
  Slot* slot = take_slot();
  if (slot == nullptr) return Errc::busy;
  std::memcpy(slot->prp, ranges, count * sizeof(spec::DsmRange));
  spec::Sqe sqe = {};
  sqe.opc = spec::kIoDatasetManagement;
  sqe.nsid = nsid;
  sqe.prp1 = ctrl_->device().translate(slot->prp);
  sqe.cdw10 = count - 1;
  sqe.cdw11 = spec::kDsmDeallocate;
  const iovec ranges_iov{slot->prp, count * sizeof(spec::DsmRange)};
  return push(*slot, sqe, cb, arg, &ranges_iov, 1);
}

void IoQueue::finish(Slot& slot, Completion c) {
  if (slot.bounce != nullptr) {
    if (slot.bounce_read && c.ok()) {
      size_t off = 0;
      for (int i = 0; i < slot.user_iovcnt; ++i) {
        std::memcpy(slot.user_iov[i].iov_base, static_cast<uint8_t*>(slot.bounce) + off, slot.user_iov[i].iov_len);
        off += slot.user_iov[i].iov_len;
      }
    }
    env::dma_free(slot.bounce);
    slot.bounce = nullptr;
  }
  c.timed_out = slot.timed_out;
  CommandCallback cb = slot.cb;
  void* arg = slot.arg;
  slot.busy = false;
  free_cids_.push_back(slot.cid);
  --outstanding_;
  ++stats_.completed;
  if (!c.ok()) ++stats_.errors;
  if (cb != nullptr) cb(arg, c);
}

int IoQueue::poll() {
  if (ctrl_->generation() != generation_) [[unlikely]] reconnect();
  if (ctrl_->device().fabrics() != nullptr) return poll_fabrics();
  if (tail_dirty_) {
    tail_dirty_ = false;
    release_barrier();  // entries before the doorbell
    ctrl_->device().write32(sq_doorbell_, sq_tail_);
    ++stats_.doorbells;
  }
  if (outstanding_ == 0) return 0;
  int reaped = 0;
  for (;;) {
    spec::Cqe& e = cq_[cq_head_];
    const uint16_t status = __atomic_load_n(&e.status, __ATOMIC_ACQUIRE);
    if ((status & 1) != phase_) break;
    const uint16_t cid = e.cid;
    Completion c;
    c.status = static_cast<uint16_t>(status & ~1u);
    c.dw0 = e.dw0;
    sq_head_ = e.sqhd;
    if (++cq_head_ == entries_) {
      cq_head_ = 0;
      phase_ ^= 1;
    }
    cq_dirty_ = true;
    if (cid >= slots_.size() || !slots_[cid].busy) [[unlikely]] {
      log::error("nvme {}: queue {} got a completion for unknown cid {}", ctrl_->info().bdf, qid_, cid);
      continue;
    }
    ++reaped;
    finish(slots_[cid], c);
  }
  if (cq_dirty_) {
    cq_dirty_ = false;
    ctrl_->device().write32(cq_doorbell_, cq_head_);
  }
  maybe_check_timeouts();
  return reaped;
}

int IoQueue::poll_fabrics() {
  if (!tcp_) return 0;
  const uint64_t before = stats_.completed;
  tcp_->poll();
  if (tcp_->failed() && connected_) {
    // Its outstanding commands failed with it; new ones get io_error until a reset.
    connected_ = false;
    log::error("nvme {}: queue {} lost its connection: {}", ctrl_->info().bdf, qid_, tcp_->error());
  }
  maybe_check_timeouts();
  return static_cast<int>(stats_.completed - before);
}

void IoQueue::maybe_check_timeouts() {
  if (timeout_ticks_ == 0 || outstanding_ == 0) return;
  const uint64_t now = clock::ticks();
  if (now < next_timeout_check_) return;
  next_timeout_check_ = now + ms_to_ticks(kTimeoutCheckMs);
  check_timeouts(now);
}

// A command past its deadline is aborted and given one more timeout; one still outstanding
// after that means the controller is stuck, so it is reset (which fails every queue's
// outstanding commands, this one included).
void IoQueue::check_timeouts(uint64_t now) {
  bool reset = false;
  for (Slot& s : slots_) {
    if (!s.busy || s.deadline == 0 || now < s.deadline) continue;
    if (s.timed_out) {
      reset = true;
      continue;
    }
    s.timed_out = true;
    ++stats_.timeouts;
    s.deadline = now + timeout_ticks_;
    log::warn("nvme {}: command {} on queue {} timed out; aborting it", ctrl_->info().bdf, s.cid, qid_);
    auto aborted = ctrl_->abort(qid_, tcp_ ? s.wire_cid : s.cid);
    if (!aborted.ok()) {
      log::warn("nvme {}: abort failed: {}", ctrl_->info().bdf, aborted.status().to_string());
      reset = true;
    }
  }
  if (reset) {
    Status st = ctrl_->reset();
    if (!st.ok()) log::error("nvme {}: reset after a timeout failed: {}", ctrl_->info().bdf, st.to_string());
    reconnect();
  }
}

// After a controller reset the queue's rings are gone on the device: fail what was
// outstanding (the device will never complete it) and create the queue again.
void IoQueue::reconnect() {
  if (reconnecting_) return;
  reconnecting_ = true;
  ++stats_.reconnects;
  struct Failed {
    CommandCallback cb;
    void* arg;
  };
  std::vector<Failed> failed;
  for (Slot& s : slots_) {
    if (!s.busy) continue;
    env::dma_free(s.bounce);
    s.bounce = nullptr;
    failed.push_back({s.cb, s.arg});
    s.busy = false;
    free_cids_.push_back(s.cid);
    --outstanding_;
    ++stats_.completed;
    ++stats_.errors;
  }
  if (sq_ != nullptr) {
    std::memset(sq_, 0, entries_ * sizeof(spec::Sqe));
    std::memset(cq_, 0, entries_ * sizeof(spec::Cqe));
  }
  tcp_.reset();  // a fabrics queue is its connection: a new one is made below
  fabrics_connecting_ = false;
  sq_tail_ = sq_head_ = cq_head_ = 0;
  phase_ = 1;
  tail_dirty_ = cq_dirty_ = false;
  connected_ = false;
  if (!ctrl_->failed()) {
    Status st = connect();
    if (!st.ok()) log::error("nvme {}: queue {} cannot reconnect: {}", ctrl_->info().bdf, qid_, st.to_string());
  } else {
    generation_ = ctrl_->generation();
  }
  reconnecting_ = false;
  Completion c;
  c.reset_aborted = true;
  for (const Failed& f : failed)
    if (f.cb != nullptr) f.cb(f.arg, c);
}

}  // namespace sluice::nvme
