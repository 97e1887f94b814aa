// The guest's memory as the front end shares it (SET_MEM_TABLE): up to kMaxRegions regions,
// each a file descriptor mapped MAP_SHARED into this process.
//
// Every address a guest hands us (a descriptor's buffer, an indirect table) goes through
// translate(), which answers only when the whole range lies inside one region; the vring
// addresses of SET_VRING_ADDR are the front end's own virtual addresses and go through
// translate_user() instead. Both are overflow-safe for any 64-bit input.
//
// A GuestMemory owns its mappings and unmaps them when destroyed or replaced (move
// assignment), so whoever replaces the table must first stop using pointers into the old
// one (the session drains the queues before it does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace sluice::vhost {

// One region as SET_MEM_TABLE describes it.
struct RegionSpec {
  uint64_t guest_addr = 0;
  uint64_t size = 0;
  uint64_t user_addr = 0;    // the same memory in the front end's address space
  uint64_t mmap_offset = 0;  // where the region starts in its file
};

class GuestMemory {
 public:
  static constexpr size_t kMaxRegions = 8;

  GuestMemory() = default;
  ~GuestMemory();
  GuestMemory(GuestMemory&& o) noexcept;
  GuestMemory& operator=(GuestMemory&& o) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Maps specs[i] from fds[i] (one descriptor per region; they are closed once mapped, the
  // mapping keeps the memory). Refuses empty, overlapping or wrapping regions, more than
  // kMaxRegions, and a region that reaches past the end of its file (touching it would
  // raise SIGBUS).
  static Result<GuestMemory> map(std::span<const RegionSpec> specs, std::span<UniqueFd> fds);
  // Regions over memory the caller owns and keeps alive (tests, fuzzers): host[i] is where
  // specs[i] starts; mmap_offset is ignored. Nothing is unmapped.
  static Result<GuestMemory> borrow(std::span<const RegionSpec> specs, std::span<uint8_t* const> host);

  // The host bytes of guest physical [addr, addr+len), only if one region holds all of
  // them; Errc::out_of_range otherwise.
  Result<std::span<uint8_t>> translate(uint64_t guest_addr, uint64_t len) const;
  // The same for the front end's virtual addresses (vring addresses).
  Result<std::span<uint8_t>> translate_user(uint64_t user_addr, uint64_t len) const;
  // The data-path form of translate(): nullptr when the range is not inside one region.
  uint8_t* host_range(uint64_t guest_addr, uint64_t len) const;

  size_t regions() const { return regions_.size(); }
  bool empty() const { return regions_.empty(); }

 private:
  struct Region {
    RegionSpec spec;
    uint8_t* host = nullptr;   // where guest_addr lands here
    void* map_base = nullptr;  // what to munmap (nullptr: borrowed)
    size_t map_len = 0;
  };
  static Status check_specs(std::span<const RegionSpec> specs);
  void unmap_all();

  std::vector<Region> regions_;
};

// True when [addr, addr+len) lies in [base, base+size), without overflowing.
inline bool range_inside(uint64_t addr, uint64_t len, uint64_t base, uint64_t size) {
  if (addr < base) return false;
  const uint64_t off = addr - base;
  return off <= size && len <= size - off;
}

}  // namespace sluice::vhost
