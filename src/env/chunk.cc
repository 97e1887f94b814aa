#include "env/chunk.h"

#include <sys/mman.h>

#include <cerrno>
#include <fstream>

#include <fmt/format.h>

#include "base/log.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

namespace sluice::env::detail {

Chunk::Chunk(uintptr_t base, size_t bytes, bool hugepages)
    : base_(base), bytes_(bytes), hugepages_(hugepages),
      state_(new std::atomic<uint8_t>[bytes >> kSlabShift]),
      pa_(new std::atomic<uint64_t>[bytes >> kSlabShift]) {
  for (size_t i = 0; i < slabs(); ++i) {
    state_[i].store(kSlabFree, std::memory_order_relaxed);
    pa_[i].store(0, std::memory_order_relaxed);
  }
}

Chunk::~Chunk() { munmap(reinterpret_cast<void*>(base_), bytes_); }

Result<std::unique_ptr<Chunk>> Chunk::map_hugepages(size_t bytes) {
  // MAP_POPULATE with a private hugetlb mapping reserves the pages at mmap time, so running
  // short fails here with ENOMEM instead of a SIGBUS on first touch.
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    return errno_status(errno, fmt::format("mmap of {} MiB of 2 MiB hugepages", bytes >> 20));
  }
  // Hugepages are never swapped; the lock documents intent and keeps the accounting honest.
  if (mlock(p, bytes) != 0) log::debug("mlock of hugepage chunk failed: errno {}", errno);
  try {
    return std::unique_ptr<Chunk>(new Chunk(reinterpret_cast<uintptr_t>(p), bytes, true));
  } catch (const std::bad_alloc&) {
    munmap(p, bytes);
    return Status(Errc::no_space, "out of memory for chunk bookkeeping");
  }
}

Result<std::unique_ptr<Chunk>> Chunk::map_ordinary(size_t bytes) {
  // Over-map by one slab and trim, so the chunk starts on a 2 MiB boundary.
  size_t span = bytes + kSlabBytes;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return errno_status(errno, fmt::format("mmap of {} MiB", bytes >> 20));
  auto start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t base = round_up(start, kSlabBytes);
  if (base > start) munmap(raw, base - start);
  uintptr_t end = start + span;
  if (end > base + bytes) munmap(reinterpret_cast<void*>(base + bytes), end - (base + bytes));
  auto* p = reinterpret_cast<void*>(base);
  // Transparent hugepages cut TLB misses when the kernel allows them (a hint only).
  madvise(p, bytes, MADV_HUGEPAGE);
  // Fault every page in now, so the first I/O does not pay for it and every page has a
  // physical address. (mlock would too, but may fail without the privilege, and sanitizers
  // turn it into a no-op.)
  if (madvise(p, bytes, MADV_POPULATE_WRITE) != 0) {
    auto* bytes_p = static_cast<volatile char*>(p);
    for (size_t off = 0; off < bytes; off += 4096) bytes_p[off] = 0;
  }
  if (mlock(p, bytes) != 0) {
    log::debug("mlock of {} MiB failed (errno {}); DMA memory is not locked", bytes >> 20, errno);
  }
  try {
    return std::unique_ptr<Chunk>(new Chunk(base, bytes, false));
  } catch (const std::bad_alloc&) {
    munmap(p, bytes);
    return Status(Errc::no_space, "out of memory for chunk bookkeeping");
  }
}

uint64_t reserved_hugepages() {
  // The size-specific counter is right even where the default hugepage size is 1 GiB.
  for (const char* path : {"/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                           "/proc/sys/vm/nr_hugepages"}) {
    std::ifstream in(path);
    uint64_t n = 0;
    if (in >> n) return n;
  }
  return 0;
}

}  // namespace sluice::env::detail
