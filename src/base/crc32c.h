// CRC-32C (Castagnoli), the checksum of every Sluice metadata block. ISA-L does the work.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

// Standard CRC-32C: crc32c("123456789") == 0xE3069283. Pass a previous result as `crc` to
// extend a checksum over several buffers.
uint32_t crc32c(const void* data, size_t len, uint32_t crc = 0);

}  // namespace sluice
