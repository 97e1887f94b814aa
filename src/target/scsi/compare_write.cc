// COMPARE AND WRITE (SBC-3 5.2), ORWRITE(16) (SBC-3 5.8: the blocks ORed with the data-out
// buffer), and the exclusion that makes them atomic: a LunChannel keeps its writes in flight;
// a COMPARE AND WRITE or ORWRITE waits for the overlapping ones to finish, and overlapping
// writes that arrive meanwhile wait for it, in arrival order. Both read the blocks into the
// first half of a bounce buffer and write its second half.
#include <algorithm>

#include "env/env.h"
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {
namespace {

bool overlap(const Task* a, const Task* b) {
  return (a->state.exclusive || b->state.exclusive) && a->state.lock_lba < b->state.lock_end &&
         b->state.lock_lba < a->state.lock_end;
}

bool conflicts_with_list(const Task* t, const Task* list) {
  for (const Task* w = list; w != nullptr; w = w->state.next)
    if (overlap(t, w)) return true;
  return false;
}

void link_write(LunChannel& lc, Task* t) {
  t->state.prev = nullptr;
  t->state.next = lc.writes;
  if (lc.writes != nullptr) lc.writes->state.prev = t;
  lc.writes = t;
  t->state.locked = true;
}

}  // namespace

bool admit_write(Task* t, uint64_t lba, uint64_t end, bool exclusive, void (*resume)(Task*)) {
  LunChannel& lc = *t->state.lc;
  t->state.lock_lba = lba;
  t->state.lock_end = end;
  t->state.exclusive = exclusive;
  t->state.resume = resume;
  if (!conflicts_with_list(t, lc.writes) && !conflicts_with_list(t, lc.blocked)) {
    link_write(lc, t);
    return true;
  }
  t->state.next = nullptr;
  if (lc.blocked_tail != nullptr)
    lc.blocked_tail->state.next = t;
  else
    lc.blocked = t;
  lc.blocked_tail = t;
  return false;
}

void retire_write(Task* t) {
  LunChannel& lc = *t->state.lc;
  if (t->state.prev != nullptr)
    t->state.prev->state.next = t->state.next;
  else
    lc.writes = t->state.next;
  if (t->state.next != nullptr) t->state.next->state.prev = t->state.prev;
  t->state.locked = false;
  t->state.next = t->state.prev = nullptr;
  // Those that may go now, in arrival order; one still blocked holds back what overlaps it.
  Task* ready = nullptr;
  Task** ready_tail = &ready;
  Task* kept = nullptr;
  Task* kept_tail = nullptr;
  for (Task* b = lc.blocked; b != nullptr;) {
    Task* next = b->state.next;
    b->state.next = nullptr;
    if (!conflicts_with_list(b, lc.writes) && !conflicts_with_list(b, kept)) {
      link_write(lc, b);
      // link_write used next/prev for the writes list; the order goes in `ready`.
      b->state.ready = nullptr;
      *ready_tail = b;
      ready_tail = &b->state.ready;
    } else {
      if (kept_tail != nullptr)
        kept_tail->state.next = b;
      else
        kept = b;
      kept_tail = b;
    }
    b = next;
  }
  lc.blocked = kept;
  lc.blocked_tail = kept_tail;
  while (ready != nullptr) {
    Task* r = ready;
    ready = r->state.ready;
    r->state.ready = nullptr;
    r->state.resume(r);
  }
}

namespace {

enum CawStep : uint32_t { kCawRead, kCawWrite, kCawFlush };
constexpr uint8_t kOrWrite = 1;  // state.mode: ORWRITE, not COMPARE AND WRITE

void caw_done(void* arg, Errc e);

Status caw_submit(Task* t) {
  LunChannel& lc = *t->state.lc;
  bdev::BdevDesc& d = *lc.lun->desc;
  const uint32_t n = t->state.chunk;
  auto* buf = static_cast<uint8_t*>(t->state.buf);
  switch (t->state.step) {
    case kCawRead: return d.read(lc.ch, buf, t->state.lba, n, caw_done, t);
    case kCawWrite: return d.write(lc.ch, buf + size_t{n} * lc.lun->block_size(), t->state.lba, n, caw_done, t);
    default: return d.flush(lc.ch, caw_done, t);
  }
}

void caw_done(void* arg, Errc e) {
  auto* t = static_cast<Task*>(arg);
  if (e != Errc::ok) {
    SenseData s = sense_of(e, t->state.step != kCawRead);
    s.has_information = t->state.step != kCawFlush;
    s.information = t->state.lba;
    return complete_check(t, s);
  }
  const size_t bytes = size_t{t->state.chunk} * t->state.lc->lun->block_size();
  const auto* buf = static_cast<const uint8_t*>(t->state.buf);
  switch (t->state.step) {
    case kCawRead: {
      if (t->state.mode == kOrWrite) {
        auto* out = static_cast<uint8_t*>(t->state.buf) + bytes;
        for (size_t i = 0; i < bytes; ++i) out[i] |= buf[i];
        t->state.step = kCawWrite;
        return submit_with_retry(t, caw_submit, true);
      }
      // The verify half of the data-out buffer against the medium.
      uint8_t want[4096];
      for (size_t off = 0; off < bytes; off += sizeof(want)) {
        const size_t k = std::min(sizeof(want), bytes - off);
        (void)copy_from_iov(t, off, want, k);  // length checked before the read
        if (std::memcmp(want, buf + off, k) == 0) continue;
        size_t j = 0;
        while (want[j] == buf[off + j]) ++j;
        return complete_check(t, {.key = sense_key::kMiscompare,
                                  .asc = asc::kMiscompareDuringVerify,
                                  .has_information = true,
                                  .information = off + j});
      }
      t->state.step = kCawWrite;
      return submit_with_retry(t, caw_submit, true);
    }
    case kCawWrite:
      if (t->state.fua) {
        t->state.step = kCawFlush;
        return submit_with_retry(t, caw_submit, true);
      }
      return complete_good(t);
    default: return complete_good(t);
  }
}

void caw_start(Task* t) { submit_with_retry(t, caw_submit, false); }

}  // namespace

void compare_and_write(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const BlockCdb b = decode_block(cdb);
  const bdev::Geometry& g = lun.geometry();
  const DeviceOptions& o = t->state.channel->device().options();
  if (b.protect()) return complete_check(t, invalid_cdb_field(1, 7));
  if (b.blocks > o.max_compare_write_blocks) return complete_check(t, invalid_cdb_field(13));
  if (b.lba > g.num_blocks || b.blocks > g.num_blocks - b.lba) return complete_check(t, illegal(asc::kLbaOutOfRange));
  if (lun.read_only) return complete_check(t, {.key = sense_key::kDataProtect, .asc = asc::kWriteProtected});
  const size_t half = size_t{b.blocks} * g.block_size;
  if (2 * half > t->expected_length) {
    t->residual_kind = Residual::overflow;
    t->residual = static_cast<uint32_t>(2 * half - t->expected_length);
    return complete_check(t, invalid_cdb_field(13));
  }
  if (t->expected_length > 2 * half) {
    // More data than the blocks take: the NUMBER OF LOGICAL BLOCKS is not what the
    // initiator meant (a count of 256 sent as 0, say), and guessing would write wrong data.
    t->residual_kind = Residual::underflow;
    t->residual = static_cast<uint32_t>(t->expected_length - 2 * half);
    return complete_check(t, invalid_cdb_field(13));
  }
  if (b.blocks == 0) return complete_good(t);
  t->state.buf = env::dma_alloc(2 * half);
  if (t->state.buf == nullptr) return complete_no_memory(t);
  if (!copy_from_iov(t, half, static_cast<uint8_t*>(t->state.buf) + half, half))
    return complete_check(t, invalid_cdb_field(13));
  t->transferred = static_cast<uint32_t>(2 * half);
  t->state.lba = b.lba;
  t->state.chunk = b.blocks;
  t->state.step = kCawRead;
  t->state.fua = g.supports(bdev::IoType::flush) && (b.fua() || !lun.write_cache.load(std::memory_order_relaxed));
  if (admit_write(t, b.lba, b.lba + b.blocks, true, caw_start)) caw_start(t);
}

void or_write(Task* t, Lun& lun) {
  const BlockCdb b = decode_block(t->cdb.data());
  const bdev::Geometry& g = lun.geometry();
  const uint32_t max_blocks = t->state.channel->device().options().max_transfer_blocks;
  if (b.protect()) return complete_check(t, invalid_cdb_field(1, 7));
  if (b.lba > g.num_blocks || b.blocks > g.num_blocks - b.lba) return complete_check(t, illegal(asc::kLbaOutOfRange));
  if (max_blocks != 0 && b.blocks > max_blocks) return complete_check(t, invalid_cdb_field(10));
  if (lun.read_only) return complete_check(t, {.key = sense_key::kDataProtect, .asc = asc::kWriteProtected});
  const size_t half = size_t{b.blocks} * g.block_size;
  // Each block is read, ORed and written whole: a short data-out is refused, not cut.
  if (half > t->expected_length) {
    t->residual_kind = Residual::overflow;
    t->residual = static_cast<uint32_t>(half - t->expected_length);
    return complete_check(t, invalid_cdb_field(10));
  }
  if (t->expected_length > half) {
    t->residual_kind = Residual::underflow;
    t->residual = static_cast<uint32_t>(t->expected_length - half);
  }
  if (b.blocks == 0) return complete_good(t);
  t->state.buf = env::dma_alloc(2 * half);
  if (t->state.buf == nullptr) return complete_no_memory(t);
  if (!copy_from_iov(t, 0, static_cast<uint8_t*>(t->state.buf) + half, half))
    return complete_check(t, invalid_cdb_field(10));
  t->transferred = static_cast<uint32_t>(half);
  t->state.mode = kOrWrite;
  t->state.lba = b.lba;
  t->state.chunk = b.blocks;
  t->state.step = kCawRead;
  t->state.fua = g.supports(bdev::IoType::flush) && (b.fua() || !lun.write_cache.load(std::memory_order_relaxed));
  if (admit_write(t, b.lba, b.lba + b.blocks, true, caw_start)) caw_start(t);
}

}  // namespace sluice::scsi
