// The shared DMA pool: the chunks, a free list per size class, the free slabs, and the
// large buffers. Thread caches refill from it and drain to it in batches; everything here
// runs under a lock, off the common path.
//
// Two locks: `grow_mu_` serializes growth (mapping a chunk, telling the watchers) and
// (de)initialization; `mu_` guards the free lists and is only ever held briefly, so threads
// refilling from memory already mapped never wait for an mmap.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "env/chunk.h"
#include "env/chunk_map.h"
#include "env/env.h"
#include "env/size_class.h"

namespace sluice::env::detail {

class DmaPool {
 public:
  // The process-wide pool. Never destroyed, so thread caches may drain into it at any exit.
  static DmaPool& get();

  Status init(const DmaOptions& options);
  void ensure_init() {
    if (!initialized_.load(std::memory_order_acquire)) [[unlikely]] init_defaults();
  }
  void teardown();
  // Bumped by teardown: a thread cache from an older generation holds stale pointers.
  uint64_t generation() const { return generation_.load(std::memory_order_relaxed); }

  // Moves up to `want` free buffers of class `cls` into `out`; 0 when memory is exhausted.
  size_t take(int cls, void** out, size_t want) noexcept;
  void put(int cls, void* const* in, size_t n) noexcept;
  // Buffers of more than 2 MiB: whole slabs, contiguous in one chunk.
  void* alloc_large(size_t bytes) noexcept;
  void free_large(void* p) noexcept;

  const ChunkMap& chunk_map() const { return map_; }
  std::vector<iovec> regions();
  bool hugepage_backed();
  uint64_t watch(DmaRegionCallback cb);
  void unwatch(uint64_t handle);
  DmaStats stats();

 private:
  DmaPool() = default;
  void init_defaults();
  Status init_locked(const DmaOptions& options);  // holds grow_mu_
  // Maps a chunk of at least `min_bytes` unless, by the time grow_mu_ is ours, another
  // thread has already freed up `min_bytes` of contiguous slabs. False when out of memory.
  bool grow(size_t min_bytes);
  // Maps a chunk of `want_bytes`, or at least `min_bytes` when memory is short (holds
  // grow_mu_).
  Status grow_locked(size_t min_bytes, size_t want_bytes);
  Result<std::unique_ptr<Chunk>> map_chunk(size_t min_bytes, size_t want_bytes);
  // A run of `n` free slabs in a ready chunk (holds mu_).
  std::pair<Chunk*, size_t> find_free_slabs(size_t n);
  bool carve(int cls);  // holds mu_

  std::mutex grow_mu_;
  DmaOptions options_;                                  // guarded by grow_mu_
  std::vector<std::pair<uint64_t, DmaRegionCallback>> watchers_;  // guarded by grow_mu_
  uint64_t next_watch_ = 1;                             // guarded by grow_mu_

  std::mutex mu_;
  std::vector<std::unique_ptr<Chunk>> chunks_;          // guarded by mu_
  std::vector<void*> free_[kClasses];                   // guarded by mu_
  std::unordered_map<uintptr_t, size_t> large_;         // start -> slabs; guarded by mu_
  size_t free_slabs_ = 0;                               // in ready chunks; guarded by mu_
  size_t outstanding_ = 0;                              // bytes; guarded by mu_

  std::atomic<bool> initialized_{false};
  std::atomic<uint64_t> generation_{1};
  ChunkMap map_;
};

}  // namespace sluice::env::detail
