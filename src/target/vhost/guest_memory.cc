// GuestMemory: mapping SET_MEM_TABLE's regions and translating guest addresses (guest_memory.h).
#include "target/vhost/guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include <fmt/format.h>

namespace sluice::vhost {

GuestMemory::~GuestMemory() { unmap_all(); }

GuestMemory::GuestMemory(GuestMemory&& o) noexcept : regions_(std::move(o.regions_)) { o.regions_.clear(); }

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    unmap_all();
    regions_ = std::move(o.regions_);
    o.regions_.clear();
  }
  return *this;
}

void GuestMemory::unmap_all() {
  for (Region& r : regions_)
    if (r.map_base != nullptr) ::munmap(r.map_base, r.map_len);
  regions_.clear();
}

Status GuestMemory::check_specs(std::span<const RegionSpec> specs) {
  if (specs.empty()) return Status(Errc::invalid_argument, "memory table has no regions");
  if (specs.size() > kMaxRegions)
    return Status(Errc::invalid_argument, fmt::format("memory table has {} regions, at most {}", specs.size(), kMaxRegions));
  for (size_t i = 0; i < specs.size(); ++i) {
    const RegionSpec& s = specs[i];
    if (s.size == 0) return Status(Errc::invalid_argument, fmt::format("memory region {} is empty", i));
    if (s.guest_addr + s.size < s.guest_addr || s.user_addr + s.size < s.user_addr ||
        s.mmap_offset + s.size < s.mmap_offset)
      return Status(Errc::invalid_argument, fmt::format("memory region {} wraps around the address space", i));
    // Overlapping guest ranges would make a translation ambiguous.
    for (size_t j = 0; j < i; ++j) {
      const RegionSpec& o = specs[j];
      if (s.guest_addr < o.guest_addr + o.size && o.guest_addr < s.guest_addr + s.size)
        return Status(Errc::invalid_argument, fmt::format("memory regions {} and {} overlap", j, i));
    }
  }
  return Status::Ok();
}

Result<GuestMemory> GuestMemory::map(std::span<const RegionSpec> specs, std::span<UniqueFd> fds) {
  SLUICE_RETURN_IF_ERROR(check_specs(specs));
  if (fds.size() != specs.size())
    return Status(Errc::invalid_argument,
                  fmt::format("memory table has {} regions but came with {} descriptors", specs.size(), fds.size()));
  GuestMemory mem;
  for (size_t i = 0; i < specs.size(); ++i) {
    const RegionSpec& s = specs[i];
    struct stat st {};
    if (::fstat(fds[i].get(), &st) != 0) return errno_status(errno, fmt::format("fstat memory region {}", i));
    const uint64_t end = s.mmap_offset + s.size;
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < end)
      return Status(Errc::out_of_range, fmt::format("memory region {} ends at byte {} of a {}-byte file", i, end,
                                                    static_cast<uint64_t>(st.st_size)));
    if (end > SIZE_MAX / 2) return Status(Errc::out_of_range, fmt::format("memory region {} is too large", i));
    // Mapped from offset 0 so that an mmap_offset not aligned to a page still works.
    void* base = ::mmap(nullptr, end, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i].get(), 0);
    if (base == MAP_FAILED) return errno_status(errno, fmt::format("mmap memory region {} ({} bytes)", i, end));
    mem.regions_.push_back(Region{s, static_cast<uint8_t*>(base) + s.mmap_offset, base, static_cast<size_t>(end)});
    fds[i].reset();
  }
  return mem;
}

Result<GuestMemory> GuestMemory::borrow(std::span<const RegionSpec> specs, std::span<uint8_t* const> host) {
  SLUICE_RETURN_IF_ERROR(check_specs(specs));
  if (host.size() != specs.size()) return Status(Errc::invalid_argument, "one host pointer per region");
  GuestMemory mem;
  for (size_t i = 0; i < specs.size(); ++i) mem.regions_.push_back(Region{specs[i], host[i], nullptr, 0});
  return mem;
}

uint8_t* GuestMemory::host_range(uint64_t guest_addr, uint64_t len) const {
  for (const Region& r : regions_)
    if (range_inside(guest_addr, len, r.spec.guest_addr, r.spec.size)) return r.host + (guest_addr - r.spec.guest_addr);
  return nullptr;
}

Result<std::span<uint8_t>> GuestMemory::translate(uint64_t guest_addr, uint64_t len) const {
  if (uint8_t* p = host_range(guest_addr, len)) return std::span<uint8_t>(p, len);
  return Status(Errc::out_of_range,
                fmt::format("guest range {:#x}+{:#x} is not inside one memory region", guest_addr, len));
}

Result<std::span<uint8_t>> GuestMemory::translate_user(uint64_t user_addr, uint64_t len) const {
  for (const Region& r : regions_)
    if (range_inside(user_addr, len, r.spec.user_addr, r.spec.size))
      return std::span<uint8_t>(r.host + (user_addr - r.spec.user_addr), len);
  return Status(Errc::out_of_range,
                fmt::format("front-end range {:#x}+{:#x} is not inside one memory region", user_addr, len));
}

}  // namespace sluice::vhost
