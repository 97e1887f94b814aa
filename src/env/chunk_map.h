// Maps any address to the chunk holding it in two dependent loads, without a lock: a
// two-level radix table indexed by the address's 2 MiB slab number (48-bit addresses).
#pragma once

#include <atomic>
#include <cstdint>

#include "env/chunk.h"

namespace sluice::env::detail {

class ChunkMap {
 public:
  ChunkMap() = default;
  ChunkMap(const ChunkMap&) = delete;
  ChunkMap& operator=(const ChunkMap&) = delete;

  // Writers hold the pool's growth lock. Leaves, once made, live as long as the map.
  bool insert(Chunk* chunk);
  void erase(const Chunk* chunk);

  Chunk* lookup(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p);
    if (a >> kAddressBits) return nullptr;
    Leaf* leaf = top_[a >> (kSlabShift + kLeafBits)].load(std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    return leaf->slot[(a >> kSlabShift) & (kLeafSize - 1)].load(std::memory_order_acquire);
  }

 private:
  static constexpr int kAddressBits = 48;
  static constexpr int kLeafBits = 13;
  static constexpr size_t kLeafSize = size_t{1} << kLeafBits;
  static constexpr size_t kTopSize = size_t{1} << (kAddressBits - kSlabShift - kLeafBits);
  struct Leaf {
    std::atomic<Chunk*> slot[kLeafSize] = {};
  };
  void set(uintptr_t slab_addr, Chunk* chunk);

  std::atomic<Leaf*> top_[kTopSize] = {};
};

}  // namespace sluice::env::detail
