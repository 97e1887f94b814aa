// Other formats' signatures on a device, found by libblkid (internal to src/blob: probe.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace sluice::blob {

// The parts of a device a probe read: `head` from offset 0 and `tail` from `tail_offset`.
// The rest reads as zeroes here.
struct DeviceWindows {
  uint64_t device_bytes = 0;
  uint32_t block_size = 512;
  std::string head;
  uint64_t tail_offset = 0;
  std::string tail;
};

// One description per signature libblkid finds in the windows ("ext4 filesystem (UUID
// ...)", "gpt partition table"); empty when there is none. Damaged signatures (a bad
// checksum) count: what they label may still be someone's data.
Result<std::vector<std::string>> find_signatures(const DeviceWindows& w);

}  // namespace sluice::blob
