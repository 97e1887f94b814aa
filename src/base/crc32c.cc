#include "base/crc32c.h"

#include <isa-l/crc.h>

namespace sluice {

uint32_t crc32c(const void* data, size_t len, uint32_t crc) {
  // ISA-L's crc32_iscsi takes and returns the raw register: invert on the way in and out to
  // get the standard (RFC 3720) value that chains across calls.
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t reg = ~crc;
  while (len > 0) {
    int chunk = len > (1u << 30) ? (1 << 30) : static_cast<int>(len);
    reg = crc32_iscsi(const_cast<unsigned char*>(p), chunk, reg);
    p += chunk;
    len -= static_cast<size_t>(chunk);
  }
  return ~reg;
}

}  // namespace sluice
