// The guest the vhost fuzz targets meet (vhost_chain_fuzz, vhost_scsi_fuzz): the input's
// bytes 0-1 pick the ring size (a power of two, 1 to 256) and EVENT_IDX, byte 2 the queue's
// starting index; the rest is the guest's memory (at most 64 KiB, one region at guest address
// 0x10000, rings at its start), so the descriptor table, the available ring and every buffer
// and indirect table are the fuzzer's.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "target/vhost/virtqueue.h"

namespace sluice::fuzz {

struct FuzzRing {
  static constexpr uint64_t kGuestAddr = 0x10000;
  static constexpr uint64_t kUserAddr = 0x7000000;
  static constexpr size_t kMaxMemory = 64 << 10;

  std::vector<uint8_t> mem;
  std::optional<vhost::GuestMemory> guest;
  vhost::SplitQueue queue;
  uint16_t size = 0;

  // Lays out the input; false if it is too short. Aborts (`target` names the fuzzer) if the
  // queue refuses rings that lie inside memory.
  bool attach(const char* target, const uint8_t* data, size_t n) {
    if (n < 3) return false;
    size = static_cast<uint16_t>(1u << (data[0] % 9));
    const bool event_idx = (data[1] & 1) != 0;
    const uint16_t start = data[2];
    // At least big enough for the rings so that attach succeeds.
    const size_t rings = 16 * size + 6 + 2 * size + 2 + 6 + 8 * size + 8;
    mem.assign(std::max(rings, std::min(n - 3, kMaxMemory)), 0);
    std::memcpy(mem.data(), data + 3, std::min(n - 3, mem.size()));
    vhost::RegionSpec spec{kGuestAddr, mem.size(), kUserAddr, 0};
    uint8_t* host[1] = {mem.data()};
    auto gm = vhost::GuestMemory::borrow({&spec, 1}, host);
    if (!gm.ok()) broken(target, "a valid region refused");
    guest.emplace(std::move(gm.value()));
    const uint64_t avail = 16 * size;
    const uint64_t used = (avail + 6 + 2 * size + 3) / 4 * 4;
    if (!queue.attach(*guest, size, {kUserAddr, kUserAddr + avail, kUserAddr + used}, start, event_idx).ok())
      broken(target, "attach refused rings inside memory");
    return true;
  }

  // Whether [p, p + len) lies inside guest memory.
  bool inside(const void* p, size_t len) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return b >= mem.data() && b <= mem.data() + mem.size() && len <= static_cast<size_t>(mem.data() + mem.size() - b);
  }

  [[noreturn]] static void broken(const char* target, const char* what) {
    std::fprintf(stderr, "%s: BROKEN PROMISE: %s\n", target, what);
    std::abort();
  }
};

}  // namespace sluice::fuzz
