#include "env/chunk.h"

#include <sys/mman.h>

#include <cerrno>
#include <fstream>

#include <fmt/format.h>

#include "base/log.h"
#include "env/env.h"

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
  void* p = map_hugepage_memory(bytes);
  if (p == MAP_FAILED) return errno_status(errno, fmt::format("mmap of {} MiB of 2 MiB hugepages", bytes >> 20));
  // Hugepages are never swapped; the lock documents intent and keeps the accounting honest.
  if (mlock(p, bytes) != 0) log::debug("mlock of hugepage chunk failed: errno {}", errno);
  return adopt(p, bytes, true);
}

Result<std::unique_ptr<Chunk>> Chunk::map_ordinary(size_t bytes) {
  // Every page faulted in now also gives every page a physical address.
  void* p = map_committed_memory(bytes);
  if (p == MAP_FAILED) return errno_status(errno, fmt::format("mmap of {} MiB", bytes >> 20));
  if (mlock(p, bytes) != 0) {
    log::debug("mlock of {} MiB failed (errno {}); DMA memory is not locked", bytes >> 20, errno);
  }
  return adopt(p, bytes, false);
}

Result<std::unique_ptr<Chunk>> Chunk::adopt(void* p, size_t bytes, bool hugepages) {
  try {
    return std::unique_ptr<Chunk>(new Chunk(reinterpret_cast<uintptr_t>(p), bytes, hugepages));
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
