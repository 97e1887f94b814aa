// A chunk: one mapping of DMA memory, a whole number of 2 MiB slabs, 2 MiB aligned. Each
// slab is free, carved into buffers of one size class, or part of a large buffer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "env/size_class.h"

namespace sluice::env::detail {

// Slab states; a class c slab holds kSlabClass + c.
inline constexpr uint8_t kSlabFree = 0;
inline constexpr uint8_t kSlabClass = 1;
inline constexpr uint8_t kSlabLarge = 0xff;

class Chunk {
 public:
  // Maps `bytes` (a multiple of 2 MiB) of hugepages, populated and locked.
  static Result<std::unique_ptr<Chunk>> map_hugepages(size_t bytes);
  // Maps `bytes` of ordinary anonymous memory, 2 MiB aligned, locked when the limits allow
  // (else prefaulted).
  static Result<std::unique_ptr<Chunk>> map_ordinary(size_t bytes);
  ~Chunk();
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;

  uintptr_t base() const { return base_; }
  size_t bytes() const { return bytes_; }
  size_t slabs() const { return bytes_ >> kSlabShift; }
  bool hugepages() const { return hugepages_; }
  bool contains(uintptr_t a) const { return a - base_ < bytes_; }
  size_t slab_of(uintptr_t a) const { return (a - base_) >> kSlabShift; }
  uintptr_t slab_base(size_t slab) const { return base_ + (slab << kSlabShift); }

  // Written under the pool's lock; read without it by dma_free, which only looks at slabs
  // holding a live buffer (whose state cannot change meanwhile).
  uint8_t state(size_t slab) const { return state_[slab].load(std::memory_order_relaxed); }
  void set_state(size_t slab, uint8_t s) { state_[slab].store(s, std::memory_order_relaxed); }

  // Physical address of each hugepage (= slab), 0 until first translated. Hugepages stay
  // put, so a translation is good for the life of the chunk. Unused for ordinary memory.
  std::atomic<uint64_t>& slab_pa(size_t slab) { return pa_[slab]; }

  // The pool only carves chunks that every region watcher has seen.
  bool ready = false;

 private:
  Chunk(uintptr_t base, size_t bytes, bool hugepages);
  // Takes a fresh mapping of `bytes` at `p` (unmapped again if the bookkeeping cannot be had).
  static Result<std::unique_ptr<Chunk>> adopt(void* p, size_t bytes, bool hugepages);
  uintptr_t base_;
  size_t bytes_;
  bool hugepages_;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::unique_ptr<std::atomic<uint64_t>[]> pa_;
};

// 2 MiB hugepages the system has reserved (nr_hugepages for that size).
uint64_t reserved_hugepages();

}  // namespace sluice::env::detail
