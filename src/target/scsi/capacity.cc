// READ CAPACITY 10/16 and GET LBA STATUS (SBC-3 5.16, 5.17, 5.8).
#include <algorithm>

#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {

void read_capacity(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const uint64_t last = lun.num_blocks() - 1;
  uint8_t d[32] = {};
  if (cdb[0] == op::kReadCapacity10) {
    // PMI is obsolete; an LBA without it is an error (SBC-3 5.16).
    if (!(cdb[8] & 0x01) && get32(cdb + 2) != 0) return complete_check(t, invalid_cdb_field(2));
    // Too large for 32 bits: FFFFFFFFh sends the initiator to READ CAPACITY (16).
    put32(d, static_cast<uint32_t>(std::min<uint64_t>(last, 0xffffffff)));
    put32(d + 4, lun.block_size());
    return complete_data_in(t, d, 8, 8);
  }
  const bdev::Geometry& g = lun.geometry();
  put64(d, last);
  put32(d + 8, g.block_size);
  if (g.supports(bdev::IoType::unmap)) d[14] = 0x80 | (g.unmap_zeroes ? 0x40 : 0);  // LBPME, LBPRZ
  complete_data_in(t, d, 32, get32(cdb + 10));
}

void get_lba_status(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const uint64_t lba = get64(cdb + 2);
  const uint32_t alloc = get32(cdb + 10);
  if (lba >= lun.num_blocks()) return complete_check(t, illegal(asc::kLbaOutOfRange));
  constexpr size_t kMaxDescriptors = 64;
  const size_t want = alloc > 8 ? std::min<size_t>((alloc - 8 + 15) / 16, kMaxDescriptors) : 1;
  const uint64_t span = std::min<uint64_t>(lun.num_blocks() - lba, 0xffffffffull * want);
  auto runs = lun.desc->block_status(t->state.lc->ch, lba, span, want);
  if (!runs.ok()) return complete_check(t, sense_of(runs.status().code(), false));
  uint8_t d[8 + 16 * kMaxDescriptors] = {};
  size_t n = 8;
  uint64_t at = lba;
  for (const bdev::BlockRun& r : runs.value()) {
    if (n + 16 > sizeof(d)) break;
    // A run longer than the 32-bit field goes in as several descriptors of the same status.
    for (uint64_t left = r.blocks; left > 0 && n + 16 <= sizeof(d);) {
      const uint32_t k = static_cast<uint32_t>(std::min<uint64_t>(left, 0xffffffff));
      put64(d + n, at);
      put32(d + n + 8, k);
      d[n + 12] = r.hole ? 0x01 : 0x00;  // deallocated : mapped
      n += 16;
      at += k;
      left -= k;
    }
  }
  put32(d, static_cast<uint32_t>(n - 4));
  complete_data_in(t, d, n, alloc);
}

}  // namespace sluice::scsi
