// INQUIRY: standard data (SPC-4 6.6.2) and the VPD pages 00h, 80h, 83h (SPC-4 7.8) and
// B0h, B1h, B2h (SBC-3 6.5).
#include <algorithm>

#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {
namespace {

constexpr uint8_t kPages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};

// Space-padded, not NUL-terminated: what T10 asks of every ASCII identification field.
void put_ascii(uint8_t* out, std::string_view s, size_t width) {
  std::memset(out, ' ', width);
  std::memcpy(out, s.data(), std::min(s.size(), width));
}

size_t standard(const Device& dev, const Lun* lun, uint8_t* d) {
  constexpr size_t kLength = 74;
  std::memset(d, 0, kLength);
  // No LUN here: peripheral qualifier 011b, device type 1Fh (SPC-4 6.6.2).
  d[0] = lun != nullptr ? 0x00 : 0x7f;
  d[2] = 0x06;  // SPC-4
  d[3] = 0x12;  // HISUP, response data format 2
  d[4] = kLength - 5;
  d[7] = 0x02;  // CMDQUE: tasks may be queued
  put_ascii(d + 8, dev.options().vendor, 8);
  put_ascii(d + 16, dev.options().product, 16);
  put_ascii(d + 32, dev.options().revision, 4);
  put16(d + 58, 0x00a0);  // SAM-5
  put16(d + 60, 0x0460);  // SPC-4
  put16(d + 62, 0x04c0);  // SBC-3
  return kLength;
}

size_t device_identification(const Task* t, const Lun& lun, uint8_t* d) {
  const DeviceOptions& o = t->state.channel->device().options();
  size_t n = 4;
  // NAA 3 (locally assigned): a 60-bit value from the device, bdev and LUN, stable across restarts.
  d[n] = 0x01;      // binary
  d[n + 1] = 0x03;  // association: logical unit; type: NAA
  d[n + 3] = 8;
  put64(d + n + 4, uint64_t{3} << 60 | lun.naa);
  n += 12;
  // T10 vendor ID based: the vendor, then the device name and serial number.
  const std::string id = o.name + ":" + lun.serial;
  const size_t id_len = std::min<size_t>(8 + id.size(), 200);
  d[n] = 0x02;  // ASCII
  d[n + 1] = 0x01;
  d[n + 3] = static_cast<uint8_t>(id_len);
  put_ascii(d + n + 4, o.vendor, 8);
  std::memcpy(d + n + 12, id.data(), id_len - 8);
  n += 4 + id_len;
  {
    std::lock_guard lock(shared(t).mu);
    auto it = shared(t).nexuses.find(t->nexus);
    if (it != shared(t).nexuses.end()) {  // relative target port: the port this task came through
      d[n] = 0x01;
      d[n + 1] = 0x14;  // association: target port; type: relative target port
      d[n + 3] = 4;
      put16(d + n + 6, it->second.relative_target_port);
      n += 8;
    }
  }
  if (!o.name.empty()) {  // SCSI name string of the target device, NUL-terminated, 4-byte multiple
    const size_t len = std::min<size_t>((o.name.size() + 4) & ~size_t{3}, 224);
    d[n] = 0x03;      // UTF-8
    d[n + 1] = 0x28;  // association: target device; type: SCSI name string
    d[n + 3] = static_cast<uint8_t>(len);
    std::memset(d + n + 4, 0, len);
    std::memcpy(d + n + 4, o.name.data(), std::min(o.name.size(), len - 1));
    n += 4 + len;
  }
  return n;
}

size_t block_limits(const Task* t, const Lun& lun, uint8_t* d) {
  const DeviceOptions& o = t->state.channel->device().options();
  const bdev::Geometry& g = lun.geometry();
  d[4] = 0x01;  // WSNZ: WRITE SAME with zero blocks is refused, not "to the end of the medium"
  d[5] = o.max_compare_write_blocks;
  put16(d + 6, static_cast<uint16_t>(std::min<uint32_t>(g.optimal_io_blocks, 0xffff)));
  put32(d + 8, o.max_transfer_blocks);
  put32(d + 12, g.optimal_io_blocks);
  if (g.supports(bdev::IoType::unmap)) {
    put32(d + 20, o.max_unmap_blocks);
    put32(d + 24, o.max_unmap_descriptors);
    put32(d + 28, 1);
  }
  put64(d + 36, o.max_write_same_blocks);
  return 64;
}

size_t provisioning(const Lun& lun, uint8_t* d) {
  const bdev::Geometry& g = lun.geometry();
  if (g.supports(bdev::IoType::unmap)) {
    d[5] = 0x80 | 0x40 | 0x20;         // LBPU, LBPWS, LBPWS10
    if (g.unmap_zeroes) d[5] |= 0x04;  // LBPRZ
    d[6] = 0x02;                       // thin provisioned
  }
  return 8;
}

}  // namespace

void inquiry(Task* t, Lun* lun) {
  const uint8_t* cdb = t->cdb.data();
  const uint32_t alloc = get16(cdb + 3);
  uint8_t d[512] = {};
  if (cdb[1] & 0x02) return complete_check(t, invalid_cdb_field(1, 1));  // CMDDT, obsolete
  if (!(cdb[1] & 0x01)) {
    if (cdb[2] != 0) return complete_check(t, invalid_cdb_field(2));
    const size_t n = standard(t->state.channel->device(), lun, d);
    return complete_data_in(t, d, n, alloc);
  }
  if (lun == nullptr) return complete_check(t, illegal(asc::kLunNotSupported));
  size_t n = 0;
  switch (cdb[2]) {
    case 0x00:
      std::memcpy(d + 4, kPages, sizeof(kPages));
      n = 4 + sizeof(kPages);
      break;
    case 0x80:
      n = std::min<size_t>(lun->serial.size(), 252);
      put_ascii(d + 4, lun->serial, n);
      n += 4;
      break;
    case 0x83: n = device_identification(t, *lun, d); break;
    case 0xb0: n = block_limits(t, *lun, d); break;
    case 0xb1:
      put16(d + 4, 0x0001);  // MEDIUM ROTATION RATE: non-rotating medium
      n = 64;
      break;
    case 0xb2: n = provisioning(*lun, d); break;
    default: return complete_check(t, invalid_cdb_field(2));
  }
  d[0] = 0x00;
  d[1] = cdb[2];
  put16(d + 2, static_cast<uint16_t>(n - 4));
  complete_data_in(t, d, n, alloc);
}

}  // namespace sluice::scsi
