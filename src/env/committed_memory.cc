// Committed anonymous memory (env.h): the DMA pool's chunks and the malloc bdev's RAM disks.
#include <sys/mman.h>

#include <cstdint>

#include "env/env.h"

namespace sluice::env {
namespace {
constexpr size_t kHugepage = 2u << 20;
constexpr size_t kPage = 4096;
}  // namespace

void* map_hugepage_memory(size_t bytes) {
  // MAP_POPULATE with a private hugetlb mapping reserves the pages at mmap time, so running
  // short fails here with ENOMEM instead of a SIGBUS on first touch.
  return mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB | MAP_POPULATE,
              -1, 0);
}

void* map_committed_memory(size_t bytes) {
  // Over-map by one hugepage and trim, so the mapping starts on a 2 MiB boundary, where
  // transparent hugepages can back it.
  const size_t span = bytes + kHugepage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return raw;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t base = (start + kHugepage - 1) / kHugepage * kHugepage;
  if (base > start) munmap(raw, base - start);
  if (start + span > base + bytes) munmap(reinterpret_cast<void*>(base + bytes), start + span - (base + bytes));
  void* p = reinterpret_cast<void*>(base);
  (void)madvise(p, bytes, MADV_HUGEPAGE);  // advice: fails harmlessly where THP is off
  // Fault every page in now (mlock would too, but may fail without the privilege, and
  // sanitizers turn it into a no-op). Kernels before 5.14 lack MADV_POPULATE_WRITE: touch.
  if (madvise(p, bytes, MADV_POPULATE_WRITE) != 0) {
    for (size_t off = 0; off < bytes; off += kPage) static_cast<volatile char*>(p)[off] = 0;
  }
  return p;
}

}  // namespace sluice::env
