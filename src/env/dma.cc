// The public DMA memory entry points: argument checks, then a size class through the
// thread cache, or a large buffer from the pool.

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/log.h"
#include "base/size.h"
#include "env/dma_pool.h"
#include "env/env.h"
#include "env/size_class.h"
#include "env/thread_cache.h"

namespace sluice::env {
namespace {

using detail::DmaPool;

// No buffer may exceed physical memory: anything bigger is a bug, not a request.
size_t max_alloc_bytes() {
  static const size_t limit = [] {
    const uint64_t ram = physical_memory_bytes();
    return ram == UINT64_MAX ? size_t{1} << 40 : static_cast<size_t>(ram);
  }();
  return limit;
}

}  // namespace

Status dma_init(const DmaOptions& options) { return DmaPool::get().init(options); }

void dma_teardown() {
  detail::cache_drain();
  DmaPool::get().teardown();
}

void* dma_alloc(size_t size, size_t align) noexcept {
  if (size == 0) {
    log::error("dma_alloc: size 0");
    return nullptr;
  }
  if (!std::has_single_bit(align) || align > kDmaHugepageSize) {
    log::error("dma_alloc({}): alignment {} is not a power of two of at most 2 MiB", size, align);
    return nullptr;
  }
  if (size > max_alloc_bytes()) {
    log::error("dma_alloc: {} bytes is more than physical memory ({})", size,
               format_size(max_alloc_bytes()));
    return nullptr;
  }
  DmaPool& pool = DmaPool::get();
  pool.ensure_init();
  size_t need = std::max({size, align, kDmaPageSize});
  void* p = need <= detail::kSlabBytes ? detail::cache_alloc(detail::class_of(need))
                                       : pool.alloc_large(size);
  if (p == nullptr) log::error("dma_alloc: no DMA memory left for {} bytes", size);
  return p;
}

void* dma_zalloc(size_t size, size_t align) noexcept {
  void* p = dma_alloc(size, align);
  if (p != nullptr) std::memset(p, 0, size);
  return p;
}

void dma_free(void* p) noexcept {
  if (p == nullptr) return;
  DmaPool& pool = DmaPool::get();
  detail::Chunk* chunk = pool.chunk_map().lookup(p);
  if (chunk == nullptr) {
    log::error("dma_free({}): not DMA memory", p);
    return;
  }
  auto a = reinterpret_cast<uintptr_t>(p);
  uint8_t state = chunk->state(chunk->slab_of(a));
  if (state == detail::kSlabLarge) {
    pool.free_large(p);
    return;
  }
  int cls = state - detail::kSlabClass;
  if (state == detail::kSlabFree || (a & (detail::class_bytes(cls) - 1)) != 0) {
    log::error("dma_free({}): not the start of a DMA buffer", p);
    return;
  }
  detail::cache_free(cls, p);
}

bool dma_hugepage_backed() { return DmaPool::get().hugepage_backed(); }
std::vector<iovec> dma_regions() { return DmaPool::get().regions(); }
uint64_t dma_watch_regions(DmaRegionCallback cb) { return DmaPool::get().watch(std::move(cb)); }
void dma_unwatch_regions(uint64_t handle) { DmaPool::get().unwatch(handle); }
DmaStats dma_stats() { return DmaPool::get().stats(); }

}  // namespace sluice::env
