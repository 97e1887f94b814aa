// UNMAP and WRITE SAME 10/16 (SBC-3 5.28, 5.41, 5.42), logical block provisioning.
//
// WRITE SAME picks the cheapest request that leaves the same data: an unmap when the UNMAP bit
// asks for one, the block is zeroes and unmapped blocks read back as zeroes (LBPRZ); a
// WRITE ZEROES for a block of zeroes; otherwise the block replicated in a bounce buffer and
// written chunk after chunk.
#include <algorithm>

#include "env/env.h"
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {
namespace {

constexpr size_t kUnmapHeader = 8;
constexpr size_t kUnmapDescriptor = 16;
constexpr size_t kPatternChunkBytes = 1 << 20;

void unmap_done(void* arg, Errc e);

void descriptor(const Task* t, uint32_t i, uint64_t* lba, uint32_t* blocks) {
  uint8_t d[kUnmapDescriptor];
  (void)copy_from_iov(t, kUnmapHeader + size_t{i} * kUnmapDescriptor, d, sizeof(d));  // length checked
  *lba = get64(d);
  *blocks = get32(d + 8);
}

Status unmap_submit(Task* t) {
  uint64_t lba;
  uint32_t blocks;
  descriptor(t, t->state.index, &lba, &blocks);
  return t->state.lc->lun->desc->unmap(t->state.lc->ch, lba, blocks, unmap_done, t);
}

// Moves to the next descriptor with blocks in it; completes when none is left.
void unmap_next(Task* t) {
  for (; t->state.index < t->state.end; ++t->state.index) {
    uint64_t lba;
    uint32_t blocks;
    descriptor(t, t->state.index, &lba, &blocks);
    if (blocks != 0) return submit_with_retry(t, unmap_submit, true);
  }
  complete_good(t);
}

void unmap_done(void* arg, Errc e) {
  auto* t = static_cast<Task*>(arg);
  if (e != Errc::ok) return complete_check(t, sense_of(e, true));
  ++t->state.index;
  unmap_next(t);
}

enum WsStep : uint32_t { kWsUnmap, kWsZeroes, kWsPattern, kWsFlush };

void ws_done(void* arg, Errc e);

Status ws_submit(Task* t) {
  LunChannel& lc = *t->state.lc;
  bdev::BdevDesc& d = *lc.lun->desc;
  const uint64_t n = t->state.end - t->state.lba;
  switch (t->state.step) {
    case kWsUnmap: return d.unmap(lc.ch, t->state.lba, n, ws_done, t);
    case kWsZeroes: return d.write_zeroes(lc.ch, t->state.lba, n, ws_done, t);
    case kWsPattern:
      t->state.chunk = static_cast<uint32_t>(std::min<uint64_t>(t->state.chunk, n));
      return d.write(lc.ch, t->state.buf, t->state.lba, t->state.chunk, ws_done, t);
    default: return d.flush(lc.ch, ws_done, t);
  }
}

void ws_done(void* arg, Errc e) {
  auto* t = static_cast<Task*>(arg);
  if (e != Errc::ok) {
    SenseData s = sense_of(e, true);
    s.has_information = t->state.step != kWsFlush;
    s.information = t->state.lba;
    return complete_check(t, s);
  }
  if (t->state.step == kWsPattern) {
    t->state.lba += t->state.chunk;
    if (t->state.lba < t->state.end) return submit_with_retry(t, ws_submit, true);
  }
  if (t->state.step != kWsFlush && t->state.fua) {
    t->state.step = kWsFlush;
    return submit_with_retry(t, ws_submit, true);
  }
  complete_good(t);
}

void ws_start(Task* t) { submit_with_retry(t, ws_submit, true); }

}  // namespace

void unmap(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const bdev::Geometry& g = lun.geometry();
  const DeviceOptions& o = t->state.channel->device().options();
  if (!g.supports(bdev::IoType::unmap)) return complete_check(t, illegal(asc::kInvalidOpcode));  // LBPU = 0
  if (cdb[1] & 0x01) return complete_check(t, invalid_cdb_field(1, 0));  // ANCHOR: no anchored state
  if (lun.read_only) return complete_check(t, {.key = sense_key::kDataProtect, .asc = asc::kWriteProtected});
  const uint32_t len = get16(cdb + 7);
  if (len == 0) return complete_good(t);
  if (len < kUnmapHeader || len > t->expected_length) return complete_check(t, illegal(asc::kParameterListLengthError));
  uint8_t h[kUnmapHeader];
  if (!copy_from_iov(t, 0, h, sizeof(h))) return complete_check(t, illegal(asc::kParameterListLengthError));
  const uint32_t bd_len = std::min<uint32_t>(get16(h + 2), len - kUnmapHeader);
  const uint32_t count = bd_len / kUnmapDescriptor;
  if (count > o.max_unmap_descriptors) return complete_check(t, invalid_param_field(2));
  size_t total = 0;
  for (int i = 0; i < t->iovcnt; ++i) total += t->iov[i].iov_len;
  if (total < kUnmapHeader + size_t{count} * kUnmapDescriptor)
    return complete_check(t, illegal(asc::kParameterListLengthError));
  // Every descriptor is checked before any is done: a refused list unmaps nothing.
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t lba;
    uint32_t blocks;
    descriptor(t, i, &lba, &blocks);
    if (lba > g.num_blocks || blocks > g.num_blocks - lba) return complete_check(t, illegal(asc::kLbaOutOfRange));
    if (blocks > o.max_unmap_blocks)
      return complete_check(t, invalid_param_field(static_cast<int>(kUnmapHeader + i * kUnmapDescriptor + 8)));
  }
  t->transferred = len;
  t->state.index = 0;
  t->state.end = count;
  // Not exclusive, but a COMPARE AND WRITE anywhere on the LUN must not interleave with it.
  if (admit_write(t, 0, g.num_blocks, false, unmap_next)) unmap_next(t);
}

void write_same(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const bool sixteen = cdb[0] == op::kWriteSame16;
  const bdev::Geometry& g = lun.geometry();
  const DeviceOptions& o = t->state.channel->device().options();
  const uint64_t lba = sixteen ? get64(cdb + 2) : get32(cdb + 2);
  const uint32_t blocks = sixteen ? get32(cdb + 10) : get16(cdb + 7);
  const bool unmap_bit = cdb[1] & 0x08;
  const bool ndob = sixteen && (cdb[1] & 0x01);
  if (cdb[1] & 0xe0) return complete_check(t, invalid_cdb_field(1, 7));  // WRPROTECT: no protection information
  if (cdb[1] & 0x10) return complete_check(t, invalid_cdb_field(1, 4));  // ANCHOR
  if (blocks == 0 || blocks > o.max_write_same_blocks) return complete_check(t, invalid_cdb_field(sixteen ? 10 : 7));
  if (lba > g.num_blocks || blocks > g.num_blocks - lba) return complete_check(t, illegal(asc::kLbaOutOfRange));
  if (lun.read_only) return complete_check(t, {.key = sense_key::kDataProtect, .asc = asc::kWriteProtected});
  const uint32_t bs = g.block_size;
  const uint32_t want = ndob ? 0 : bs;
  if (want > t->expected_length) {
    t->residual_kind = Residual::overflow;
    t->residual = want - t->expected_length;
    return complete_check(t, invalid_cdb_field(sixteen ? 10 : 7));
  }
  if (t->expected_length > want) {
    t->residual_kind = Residual::underflow;
    t->residual = t->expected_length - want;
  }
  t->transferred = want;
  const size_t chunk = std::min<uint64_t>(blocks, std::max<size_t>(kPatternChunkBytes / bs, 1));
  t->state.buf = env::dma_alloc(chunk * bs);
  if (t->state.buf == nullptr) return complete_no_memory(t);
  auto* buf = static_cast<uint8_t*>(t->state.buf);
  bool zero = true;
  if (ndob) {
    std::memset(buf, 0, bs);
  } else {
    if (!copy_from_iov(t, 0, buf, bs)) return complete_check(t, illegal(asc::kParameterListLengthError));
    zero = std::all_of(buf, buf + bs, [](uint8_t c) { return c == 0; });
  }
  t->state.lba = lba;
  t->state.end = lba + blocks;
  if (unmap_bit && zero && g.supports(bdev::IoType::unmap) && g.unmap_zeroes) {
    t->state.step = kWsUnmap;
  } else if (zero && g.supports(bdev::IoType::write_zeroes)) {
    t->state.step = kWsZeroes;
  } else {
    t->state.step = kWsPattern;
    t->state.chunk = static_cast<uint32_t>(chunk);
    for (size_t i = 1; i < chunk; ++i) std::memcpy(buf + i * bs, buf, bs);
  }
  t->state.fua = g.supports(bdev::IoType::flush) && !lun.write_cache.load(std::memory_order_relaxed);
  if (admit_write(t, lba, lba + blocks, false, ws_start)) ws_start(t);
}

}  // namespace sluice::scsi
