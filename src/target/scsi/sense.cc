// Sense data in fixed and descriptor format (SPC-4 4.5.2, 4.5.3).
#include "target/scsi/sense.h"

#include <cstring>

#include "target/scsi/cdb.h"

namespace sluice::scsi {
namespace {

// SPC-4 4.5.2.4.2: SKSV, C/D, BPV and the bit and byte pointers, three bytes.
void field_pointer(const SenseData& s, uint8_t* out) {
  out[0] = 0x80 | (s.in_cdb ? 0x40 : 0) | (s.bit >= 0 ? 0x08 | (s.bit & 0x7) : 0);
  put16(out + 1, static_cast<uint16_t>(s.field));
}

}  // namespace

size_t build_sense(const SenseData& s, bool descriptor, uint8_t* out) {
  const uint8_t code = s.asc >> 8;
  const uint8_t qualifier = s.asc & 0xff;
  if (!descriptor) {
    std::memset(out, 0, kFixedSenseLength);
    // VALID means INFORMATION is defined; a fixed-format INFORMATION holds 32 bits only.
    const bool valid = s.has_information && s.information <= 0xffffffffu;
    out[0] = 0x70 | (valid ? 0x80 : 0);
    out[2] = s.key & 0xf;
    if (valid) put32(out + 3, static_cast<uint32_t>(s.information));
    out[7] = kFixedSenseLength - 8;
    out[12] = code;
    out[13] = qualifier;
    if (s.field >= 0) field_pointer(s, out + 15);
    return kFixedSenseLength;
  }
  std::memset(out, 0, 8);
  out[0] = 0x72;
  out[1] = s.key & 0xf;
  out[2] = code;
  out[3] = qualifier;
  size_t n = 8;
  if (s.has_information) {  // information descriptor (4.5.2.2)
    std::memset(out + n, 0, 12);
    out[n] = 0x00;
    out[n + 1] = 0x0a;
    out[n + 2] = 0x80;
    put64(out + n + 4, s.information);
    n += 12;
  }
  if (s.field >= 0) {  // sense key specific descriptor (4.5.2.4)
    std::memset(out + n, 0, 8);
    out[n] = 0x02;
    out[n + 1] = 0x06;
    field_pointer(s, out + n + 4);
    n += 8;
  }
  out[7] = static_cast<uint8_t>(n - 8);
  return n;
}

}  // namespace sluice::scsi
