// Address translation: virtual address -> IOVA.
#include <atomic>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "env/dma_pool.h"
#include "env/env.h"
#include "env/pagemap.h"

namespace sluice::env {
namespace {

using detail::Chunk;
using detail::kPageShift;

std::atomic<IovaMode> g_mode{IovaMode::va};

// The physical address of a hugepage's first byte, cached in the chunk: a hugepage is
// physically contiguous and does not move.
Result<uint64_t> hugepage_pa(Chunk& chunk, size_t slab) {
  auto& cached = chunk.slab_pa(slab);
  uint64_t pa = cached.load(std::memory_order_relaxed);
  if (pa != 0) return pa;
  auto r = detail::physical_address(chunk.slab_base(slab));
  if (!r.ok()) return r;
  cached.store(*r, std::memory_order_relaxed);
  return *r;
}

Result<uint64_t> pa_of(Chunk& chunk, uintptr_t a) {
  if (!chunk.hugepages()) return detail::physical_address(a);
  size_t slab = chunk.slab_of(a);
  auto base = hugepage_pa(chunk, slab);
  if (!base.ok()) return base;
  return *base + (a - chunk.slab_base(slab));
}

Status not_contiguous(const void* p, size_t len, uintptr_t at) {
  return Status(Errc::invalid_argument,
                fmt::format("DMA range {}+{} is not physically contiguous (breaks at offset {})",
                            p, len, at - reinterpret_cast<uintptr_t>(p)));
}

}  // namespace

Status dma_set_iova_mode(IovaMode mode) {
  if (mode == IovaMode::pa) {
    // Probe with a page we know is resident: this one's stack.
    volatile char probe = 0;
    auto r = detail::physical_address(reinterpret_cast<uintptr_t>(&probe));
    if (!r.ok()) return r.status();
    auto& pool = detail::DmaPool::get();
    if (!pool.hugepage_backed() && pool.stats().chunks > 0) {
      log::warn("IOVA mode pa with ordinary (non-hugepage) DMA memory: its pages may move, "
                "so devices should use it for tests only");
    }
  }
  g_mode.store(mode, std::memory_order_relaxed);
  return Status::Ok();
}

IovaMode dma_iova_mode() { return g_mode.load(std::memory_order_relaxed); }

uint64_t dma_translate(const void* p) {
  Chunk* chunk = detail::DmaPool::get().chunk_map().lookup(p);
  if (chunk == nullptr) return kDmaBadIova;
  auto a = reinterpret_cast<uintptr_t>(p);
  if (g_mode.load(std::memory_order_relaxed) == IovaMode::va) return a;
  auto pa = pa_of(*chunk, a);
  return pa.ok() ? *pa : kDmaBadIova;
}

Result<uint64_t> dma_translate_checked(const void* p, size_t len) {
  if (len == 0) return Status(Errc::invalid_argument, "DMA range of 0 bytes");
  Chunk* chunk = detail::DmaPool::get().chunk_map().lookup(p);
  if (chunk == nullptr) {
    return Status(Errc::invalid_argument, fmt::format("{} is not DMA memory", p));
  }
  auto a = reinterpret_cast<uintptr_t>(p);
  uintptr_t last = a + len - 1;
  if (last < a || !chunk->contains(last)) {
    return Status(Errc::out_of_range,
                  fmt::format("DMA range {}+{} runs past the end of its region", p, len));
  }
  if (g_mode.load(std::memory_order_relaxed) == IovaMode::va) return a;

  auto first = pa_of(*chunk, a);
  if (!first.ok()) return first;
  if (chunk->hugepages()) {
    // Contiguous within each hugepage; check where each following one starts.
    for (size_t slab = chunk->slab_of(a) + 1; slab <= chunk->slab_of(last); ++slab) {
      auto pa = hugepage_pa(*chunk, slab);
      if (!pa.ok()) return pa;
      if (*pa != *first + (chunk->slab_base(slab) - a)) return not_contiguous(p, len, chunk->slab_base(slab));
    }
    return first;
  }
  // Ordinary memory: page by page, read in one go.
  size_t pages = (last >> kPageShift) - (a >> kPageShift) + 1;
  if (pages > 1) {
    std::vector<uint64_t> pas(pages);
    SLUICE_RETURN_IF_ERROR(detail::physical_pages(a, pages, pas.data()));
    uintptr_t page0 = a >> kPageShift << kPageShift;
    for (size_t i = 1; i < pages; ++i) {
      if (pas[i] != pas[0] + (i << kPageShift)) return not_contiguous(p, len, page0 + (i << kPageShift));
    }
  }
  return first;
}

}  // namespace sluice::env
