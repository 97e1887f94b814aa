// MODE SENSE and MODE SELECT, 6 and 10 (SPC-4 6.11-6.14): the caching page (WCE), the control
// page (D_SENSE chooses the sense format) and the informational exceptions control page.
// Parameters are per LUN, shared by every nexus, and cannot be saved.
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {
namespace {

constexpr uint8_t kCaching = 0x08;
constexpr uint8_t kControl = 0x0a;
constexpr uint8_t kInfoExceptions = 0x1c;
constexpr uint8_t kAllPages = 0x3f;

enum PageControl : uint8_t { kCurrent = 0, kChangeable = 1, kDefault = 2, kSaved = 3 };

// Writes page `code` as `pc` asks into out; returns its length, 0 for a page we lack.
size_t page(const Lun& lun, uint8_t code, uint8_t pc, uint8_t* out) {
  switch (code) {
    case kCaching:
      std::memset(out, 0, 20);
      out[0] = kCaching;
      out[1] = 0x12;
      {
        // WCE: only a device with a volatile cache (FLUSH) has one to turn on or off.
        const bool cache = lun.geometry().supports(bdev::IoType::flush);
        if (pc == kCurrent ? lun.write_cache.load() : cache) out[2] = 0x04;
        return 20;
      }
    case kControl:
      std::memset(out, 0, 12);
      out[0] = kControl;
      out[1] = 0x0a;
      if (pc == kChangeable) {
        out[2] = 0x04;
        return 12;
      }
      if (pc == kCurrent && lun.d_sense.load()) out[2] = 0x04;  // D_SENSE
      out[3] = 0x10;                                            // QUEUE ALGORITHM MODIFIER 1: commands may be reordered
      put16(out + 8, 0xffff);                                   // BUSY TIMEOUT PERIOD: unlimited
      return 12;
    case kInfoExceptions:
      std::memset(out, 0, 12);
      out[0] = kInfoExceptions;
      out[1] = 0x0a;
      if (pc != kChangeable) out[2] = 0x08;  // DEXCPT: we report no failure predictions
      return 12;
    default: return 0;
  }
}

}  // namespace

void mode_sense(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const bool ten = cdb[0] == op::kModeSense10;
  const bool dbd = cdb[1] & 0x08;
  const bool llbaa = ten && (cdb[1] & 0x10);
  const uint8_t pc = cdb[2] >> 6;
  const uint8_t code = cdb[2] & 0x3f;
  const uint8_t subpage = cdb[3];
  if (pc == kSaved) return complete_check(t, illegal(asc::kSavingParametersNotSupported));
  if (subpage != 0 && !(code == kAllPages && subpage == 0xff)) return complete_check(t, invalid_cdb_field(3));
  uint8_t d[256] = {};
  size_t n = ten ? 8 : 4;
  const uint8_t specific = (lun.read_only ? 0x80 : 0) | 0x10;  // WP, DPOFUA
  if (!dbd) {
    const uint64_t blocks = lun.num_blocks();
    if (llbaa) {
      put64(d + n, blocks);
      put32(d + n + 12, lun.block_size());
      n += 16;
    } else {
      put32(d + n, static_cast<uint32_t>(std::min<uint64_t>(blocks, 0xffffffff)));
      put32(d + n + 4, lun.block_size() & 0xffffff);
      n += 8;
    }
  }
  const size_t bd_len = n - (ten ? 8 : 4);
  if (code == kAllPages) {
    for (uint8_t c : {kCaching, kControl, kInfoExceptions}) n += page(lun, c, pc, d + n);
  } else {
    const size_t len = page(lun, code, pc, d + n);
    if (len == 0) return complete_check(t, invalid_cdb_field(2, 5));
    n += len;
  }
  if (ten) {
    put16(d, static_cast<uint16_t>(n - 2));
    d[3] = specific;
    d[4] = llbaa && !dbd ? 0x01 : 0;  // LONGLBA
    put16(d + 6, static_cast<uint16_t>(bd_len));
  } else {
    d[0] = static_cast<uint8_t>(n - 1);
    d[2] = specific;
    d[3] = static_cast<uint8_t>(bd_len);
  }
  complete_data_in(t, d, n, allocation_length(cdb));
}

void mode_select(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const bool ten = cdb[0] == op::kModeSelect10;
  if (!(cdb[1] & 0x10)) return complete_check(t, invalid_cdb_field(1, 4));  // PF = 0: vendor pages
  if (cdb[1] & 0x01) return complete_check(t, invalid_cdb_field(1, 0));     // SP: nothing is saved
  const uint32_t len = ten ? get16(cdb + 7) : cdb[4];
  if (len == 0) return complete_good(t);
  uint8_t d[512];
  const size_t header = ten ? 8 : 4;
  if (len > sizeof(d) || len < header || !copy_from_iov(t, 0, d, len))
    return complete_check(t, illegal(asc::kParameterListLengthError));
  t->transferred = len;
  const size_t bd_len = ten ? get16(d + 6) : d[3];
  size_t off = header + bd_len;
  if (off > len) return complete_check(t, illegal(asc::kParameterListLengthError));
  // Block descriptors may restate the geometry, never change it: we cannot reformat a bdev.
  const bool long_lba = ten && (d[4] & 0x01);
  const size_t bd_size = long_lba ? 16 : 8;
  if (bd_len % bd_size != 0) return complete_check(t, invalid_param_field(ten ? 6 : 3));
  for (size_t at = header; at < header + bd_len; at += bd_size) {
    const uint32_t block_len = long_lba ? get32(d + at + 12) : get24(d + at + 5);
    if (block_len != 0 && block_len != lun.block_size())
      return complete_check(t, invalid_param_field(static_cast<int>(at + (long_lba ? 12 : 5))));
  }
  bool wce = lun.write_cache.load();
  bool d_sense = lun.d_sense.load();
  // Check every page before applying any: a refused parameter list changes nothing.
  while (off < len) {
    if (off + 2 > len) return complete_check(t, illegal(asc::kParameterListLengthError));
    const uint8_t code = d[off] & 0x3f;
    if (d[off] & 0x40) return complete_check(t, invalid_param_field(static_cast<int>(off), 6));  // SPF
    uint8_t current[32], mask[32];
    const size_t plen = page(lun, code, kCurrent, current);
    page(lun, code, kChangeable, mask);
    if (plen == 0) return complete_check(t, invalid_param_field(static_cast<int>(off), 5));
    if (d[off + 1] != plen - 2) return complete_check(t, invalid_param_field(static_cast<int>(off + 1)));
    if (off + plen > len) return complete_check(t, illegal(asc::kParameterListLengthError));
    for (size_t i = 2; i < plen; ++i)
      if ((d[off + i] ^ current[i]) & ~mask[i])
        return complete_check(t, invalid_param_field(static_cast<int>(off + i)));
    if (code == kCaching) wce = d[off + 2] & 0x04;
    if (code == kControl) d_sense = d[off + 2] & 0x04;
    off += plen;
  }
  const bool changed = wce != lun.write_cache.load() || d_sense != lun.d_sense.load();
  lun.write_cache = wce;
  lun.d_sense = d_sense;
  // The other nexuses learn of it (SPC-4 6.13): their view of the LUN changed under them.
  if (changed) shared(t).raise(lun.id, asc::kModeParametersChanged, t->nexus);
  complete_good(t);
}

}  // namespace sluice::scsi
