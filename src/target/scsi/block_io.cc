// READ, WRITE, WRITE AND VERIFY and VERIFY in every size, SYNCHRONIZE CACHE 10/16 and
// PRE-FETCH 10/16 (SBC-3 5.7-5.30).
//
// Each is a short sequence of bdev requests on the task's channel, its progress in
// state.step: the data (straight between the task's buffers and the bdev), then a FLUSH when
// the write must reach the medium (FUA, or the write cache is off: the bdev layer has no FUA
// of its own), then for the verifying commands a read-back into a bounce buffer in chunks,
// compared with the data-out buffer when BYTCHK asks. A busy channel parks the task on
// wait_for_room() and resubmits the same step.
#include <algorithm>

#include "env/env.h"
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {
namespace {

enum IoStep : uint32_t { kIoData, kIoFlush, kIoVerify };
constexpr size_t kVerifyChunkBytes = 1 << 20;

enum class Kind { read, write, write_verify, verify, sync, prefetch };

Kind kind_of(uint8_t opcode) {
  switch (opcode) {
    case op::kRead6:
    case op::kRead10:
    case op::kRead12:
    case op::kRead16: return Kind::read;
    case op::kWrite6:
    case op::kWrite10:
    case op::kWrite12:
    case op::kWrite16: return Kind::write;
    case op::kWriteVerify10:
    case op::kWriteVerify12:
    case op::kWriteVerify16: return Kind::write_verify;
    case op::kVerify10:
    case op::kVerify12:
    case op::kVerify16: return Kind::verify;
    case op::kPrefetch10:
    case op::kPrefetch16: return Kind::prefetch;
    default: return Kind::sync;
  }
}

bool is_write(Kind k) { return k == Kind::write || k == Kind::write_verify; }

void bdev_done(void* arg, Errc e);

Status submit_step(Task* t) {
  LunChannel& lc = *t->state.lc;
  bdev::BdevDesc& d = *lc.lun->desc;
  switch (t->state.step) {
    case kIoData:
      if (t->state.buf != nullptr)  // a READ cut short inside a block
        return d.read(lc.ch, t->state.buf, t->state.lba, t->state.end - t->state.lba, bdev_done, t);
      if (kind_of(t->cdb[0]) == Kind::read)
        return d.readv(lc.ch, t->state.iov, t->state.iovcnt, t->state.lba, t->state.end - t->state.lba, bdev_done, t);
      return d.writev(lc.ch, t->state.iov, t->state.iovcnt, t->state.lba, t->state.end - t->state.lba, bdev_done, t);
    case kIoFlush: return d.flush(lc.ch, bdev_done, t);
    default: return d.read(lc.ch, t->state.buf, t->state.lba, t->state.chunk, bdev_done, t);
  }
}

// Reads back [state.lba, state.end), the blocks the command wrote or verifies.
void start_verify(Task* t) {
  const uint32_t bs = t->state.lc->lun->block_size();
  t->state.step = kIoVerify;
  const uint64_t chunk =
      std::min<uint64_t>(t->state.end - t->state.lba, std::max<size_t>(kVerifyChunkBytes / bs, 1));
  t->state.chunk = static_cast<uint32_t>(chunk);
  t->state.buf = env::dma_alloc(chunk * bs);
  if (t->state.buf == nullptr) return complete_no_memory(t);
  submit_with_retry(t, submit_step, false);
}

// Compares the chunk just read with the data-out buffer; false (the task completed) on a
// mismatch, whose byte offset in the data-out buffer goes in INFORMATION.
bool compare_chunk(Task* t) {
  const uint32_t bs = t->state.lc->lun->block_size();
  const BlockCdb b = decode_block(t->cdb.data());
  const auto* got = static_cast<const uint8_t*>(t->state.buf);
  uint8_t want[4096];
  for (uint32_t i = 0; i < t->state.chunk; ++i) {
    const uint64_t block = t->state.lba - b.lba + i;
    // BYTCHK 11b: one block of data-out stands for every block in the range.
    const uint64_t base = t->state.mode == 3 ? 0 : block * bs;
    for (uint32_t off = 0; off < bs; off += sizeof(want)) {
      const size_t k = std::min<size_t>(sizeof(want), bs - off);
      if (!copy_from_iov(t, base + off, want, k)) {
        complete_check(t, illegal(asc::kParameterListLengthError));
        return false;
      }
      if (std::memcmp(want, got + size_t{i} * bs + off, k) == 0) continue;
      size_t j = 0;
      while (want[j] == got[size_t{i} * bs + off + j]) ++j;
      complete_check(t, {.key = sense_key::kMiscompare,
                         .asc = asc::kMiscompareDuringVerify,
                         .has_information = true,
                         .information = block * bs + off + j});
      return false;
    }
  }
  return true;
}

void bdev_done(void* arg, Errc e) {
  auto* t = static_cast<Task*>(arg);
  const Kind kind = kind_of(t->cdb[0]);
  if (e != Errc::ok) {
    SenseData s = sense_of(e, t->state.step == kIoFlush || (is_write(kind) && t->state.step != kIoVerify));
    if (t->state.step != kIoFlush) {
      s.has_information = true;
      s.information = t->state.lba;
    }
    return complete_check(t, s);
  }
  switch (t->state.step) {
    case kIoData:
      if (kind == Kind::read) {
        if (t->state.buf != nullptr) copy_to_iov(t, t->state.buf, t->transferred);
        return complete_good(t);
      }
      if (t->state.fua) {
        t->state.step = kIoFlush;
        return submit_with_retry(t, submit_step, true);
      }
      if (kind == Kind::write_verify) return start_verify(t);
      return complete_good(t);
    case kIoFlush:
      if (kind == Kind::write_verify) return start_verify(t);
      return complete_good(t);
    default:
      if (t->state.mode != 0 && !compare_chunk(t)) return;
      t->state.lba += t->state.chunk;
      if (t->state.lba == t->state.end) return complete_good(t);
      t->state.chunk = static_cast<uint32_t>(std::min<uint64_t>(t->state.chunk, t->state.end - t->state.lba));
      return submit_with_retry(t, submit_step, false);
  }
}

void resume_write(Task* t) { submit_with_retry(t, submit_step, true); }

// Points state.iov at the first `bytes` of the task's buffers; false if they hold fewer, or
// need more segments than fit inline.
bool cut_buffers(Task* t, size_t bytes) {
  size_t total = 0;
  for (int i = 0; i < t->iovcnt; ++i) total += t->iov[i].iov_len;
  if (total < bytes) return false;
  if (total == bytes) {
    t->state.iov = t->iov;
    t->state.iovcnt = t->iovcnt;
    return true;
  }
  size_t got = 0;
  int n = 0;
  for (int i = 0; i < t->iovcnt && got < bytes; ++i, ++n) {
    if (n == static_cast<int>(t->state.trimmed.size())) return false;
    t->state.trimmed[n] = {t->iov[i].iov_base, std::min(t->iov[i].iov_len, bytes - got)};
    got += t->state.trimmed[n].iov_len;
  }
  t->state.iov = t->state.trimmed.data();
  t->state.iovcnt = n;
  return true;
}

}  // namespace

void block_io(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const Kind kind = kind_of(cdb[0]);
  const BlockCdb b = decode_block(cdb);
  const bdev::Geometry& g = lun.geometry();
  if (kind == Kind::sync || kind == Kind::prefetch) {
    // NUMBER OF LOGICAL BLOCKS 0: to the end of the medium.
    if (b.lba > g.num_blocks || (b.blocks != 0 && b.blocks > g.num_blocks - b.lba))
      return complete_check(t, illegal(asc::kLbaOutOfRange));
    // No cache of ours to load: GOOD (SBC-3 5.9: CONDITION MET only when the blocks fit in
    // one), and the bdev's own caches are its business.
    if (kind == Kind::prefetch) return complete_good(t);
    if (!g.supports(bdev::IoType::flush)) return complete_good(t);  // nothing volatile
    t->state.step = kIoFlush;
    return submit_with_retry(t, submit_step, true);
  }
  // No protection information here: any RDPROTECT/WRPROTECT/VRPROTECT is refused (SBC-3 4.18).
  if (b.protect()) return complete_check(t, invalid_cdb_field(1, 7));
  const uint8_t bytchk = (b.flags >> 1) & 0x3;
  if (kind == Kind::verify && bytchk == 2) return complete_check(t, invalid_cdb_field(1, 2));
  if (kind == Kind::write_verify && bytchk > 1) return complete_check(t, invalid_cdb_field(1, 2));
  if (b.lba > g.num_blocks || b.blocks > g.num_blocks - b.lba) return complete_check(t, illegal(asc::kLbaOutOfRange));
  // Beyond the MAXIMUM TRANSFER LENGTH that VPD page B0h states (SBC-3 6.5.3).
  const uint32_t max_blocks = t->state.channel->device().options().max_transfer_blocks;
  if (max_blocks != 0 && b.blocks > max_blocks)
    return complete_check(t, invalid_cdb_field(cdb[0] == op::kRead6 || cdb[0] == op::kWrite6 ? 4 : 7));
  if (is_write(kind) && lun.read_only)
    return complete_check(t, {.key = sense_key::kDataProtect, .asc = asc::kWriteProtected});
  uint64_t bytes = uint64_t{b.blocks} * g.block_size;
  if (kind == Kind::verify) bytes = bytchk == 0 || b.blocks == 0 ? 0 : bytchk == 3 ? g.block_size : bytes;
  uint64_t blocks = b.blocks;
  if (bytes > t->expected_length) {
    // The initiator did not send (or has no room for) all the command moves.
    t->residual_kind = Residual::overflow;
    t->residual = static_cast<uint32_t>(std::min<uint64_t>(bytes - t->expected_length, 0xffffffff));
    // VERIFY's data-out is compared with the medium: half of it proves nothing.
    if (kind == Kind::verify)
      return complete_check(t, invalid_cdb_field(cdb[0] == op::kRead6 || cdb[0] == op::kWrite6 ? 4 : 7));
    // RFC 7143 11.4.5.1: the target moves what the initiator expects and reports the rest as
    // an overflow, as LIO and libiscsi's tests expect: a READ fills the expected length, a
    // WRITE writes the whole blocks it was sent.
    bytes = t->expected_length;
    blocks = bytes / g.block_size;
    if (kind == Kind::read && bytes % g.block_size != 0) ++blocks;
    else bytes = blocks * g.block_size;
  } else if (t->expected_length > bytes) {
    t->residual_kind = Residual::underflow;
    t->residual = static_cast<uint32_t>(t->expected_length - bytes);
  }
  if (blocks == 0) return complete_good(t);
  t->transferred = static_cast<uint32_t>(bytes);
  t->state.mode = kind == Kind::write_verify ? (bytchk != 0 ? 1 : 0) : bytchk;
  t->state.lba = b.lba;
  t->state.end = b.lba + blocks;
  if (kind == Kind::verify) return start_verify(t);
  t->state.step = kIoData;
  if (kind == Kind::read && bytes % g.block_size != 0) {
    // Part of a block: the blocks go to a bounce buffer, the expected bytes on from there.
    t->state.buf = env::dma_alloc(blocks * g.block_size);
    if (t->state.buf == nullptr) return complete_no_memory(t);
    return submit_with_retry(t, submit_step, false);
  }
  if (!cut_buffers(t, bytes)) return complete_check(t, invalid_cdb_field(7));
  if (kind == Kind::read) return submit_with_retry(t, submit_step, false);
  const bool volatile_cache = g.supports(bdev::IoType::flush);
  // WRITE AND VERIFY verifies what is on the medium, so it flushes before reading back.
  t->state.fua =
      volatile_cache && (b.fua() || !lun.write_cache.load(std::memory_order_relaxed) || kind == Kind::write_verify);
  if (admit_write(t, b.lba, b.lba + blocks, false, resume_write)) resume_write(t);
}

}  // namespace sluice::scsi
