#include "env/chunk_map.h"

#include <new>

namespace sluice::env::detail {

bool ChunkMap::insert(Chunk* chunk) {
  uintptr_t end = chunk->base() + chunk->bytes();
  if (end >> kAddressBits) return false;
  // Make every leaf first, so a failure leaves nothing half-inserted.
  for (uintptr_t a = chunk->base(); a < end; a += kSlabBytes) {
    auto& top = top_[a >> (kSlabShift + kLeafBits)];
    if (top.load(std::memory_order_relaxed) == nullptr) {
      Leaf* leaf = new (std::nothrow) Leaf;
      if (leaf == nullptr) return false;
      top.store(leaf, std::memory_order_release);
    }
  }
  for (uintptr_t a = chunk->base(); a < end; a += kSlabBytes) set(a, chunk);
  return true;
}

void ChunkMap::erase(const Chunk* chunk) {
  for (uintptr_t a = chunk->base(); a < chunk->base() + chunk->bytes(); a += kSlabBytes) set(a, nullptr);
}

void ChunkMap::set(uintptr_t slab_addr, Chunk* chunk) {
  Leaf* leaf = top_[slab_addr >> (kSlabShift + kLeafBits)].load(std::memory_order_relaxed);
  leaf->slot[(slab_addr >> kSlabShift) & (kLeafSize - 1)].store(chunk, std::memory_order_release);
}

}  // namespace sluice::env::detail
