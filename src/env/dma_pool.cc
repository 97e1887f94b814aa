#include "env/dma_pool.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/log.h"

namespace sluice::env::detail {
namespace {

// SLUICE_DMA_MB: megabytes to map at initialization.
size_t initial_bytes_from_env() {
  const char* v = std::getenv("SLUICE_DMA_MB");
  if (v == nullptr || *v == '\0') return 0;
  std::string_view s(v);
  uint64_t mb = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), mb);
  if (ec != std::errc() || end != s.data() + s.size() || mb > (uint64_t{1} << 24)) {
    log::warn("ignoring SLUICE_DMA_MB='{}': want a number of MiB", s);
    return 0;
  }
  return static_cast<size_t>(mb) << 20;
}

void notice_fallback_once(const std::string& why) {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  log::notice("DMA memory: {}; using ordinary memory instead "
              "(to reserve hugepages: echo N > /proc/sys/vm/nr_hugepages)", why);
}

}  // namespace

DmaPool& DmaPool::get() {
  // Leaked on purpose: thread caches drain into it from thread_local destructors, which may
  // run after static destructors. It stays reachable, so LeakSanitizer is content.
  static DmaPool* pool = new DmaPool;
  return *pool;
}

Status DmaPool::init(const DmaOptions& options) {
  std::lock_guard grow_lock(grow_mu_);
  if (initialized_.load(std::memory_order_relaxed)) {
    return Status(Errc::busy, "DMA memory is already initialized (dma_init must come before the "
                              "first allocation, or after dma_teardown)");
  }
  return init_locked(options);
}

void DmaPool::init_defaults() {
  std::lock_guard grow_lock(grow_mu_);
  if (initialized_.load(std::memory_order_relaxed)) return;
  Status st = init_locked(DmaOptions{});
  if (!st.ok()) {
    // Only the initial mapping can fail here; carry on and map on demand.
    log::warn("DMA memory: initial mapping failed ({}); mapping on demand", st.to_string());
    initialized_.store(true, std::memory_order_release);
  }
}

Status DmaPool::init_locked(const DmaOptions& options) {
  options_ = options;
  options_.chunk_bytes = round_up(std::max(options.chunk_bytes, kSlabBytes), kSlabBytes);
  if (options_.chunk_bytes < options.chunk_bytes) {
    return Status(Errc::invalid_argument, fmt::format("chunk size {} is too large", options.chunk_bytes));
  }
  size_t initial = options.initial_bytes ? options.initial_bytes : initial_bytes_from_env();
  // Required hugepages fail at init rather than at some later allocation.
  if (initial == 0 && options.hugepages == HugepageMode::required) initial = options_.chunk_bytes;
  if (initial > 0) {
    size_t rounded = round_up(initial, kSlabBytes);
    if (rounded < initial) return Status(Errc::invalid_argument, "initial DMA pool size is too large");
    SLUICE_RETURN_IF_ERROR(grow_locked(rounded, rounded));
  }
  initialized_.store(true, std::memory_order_release);
  return Status::Ok();
}

void DmaPool::teardown() {
  std::lock_guard grow_lock(grow_mu_);
  std::lock_guard lock(mu_);
  if (outstanding_ > 0) log::debug("DMA teardown: {} bytes still held by threads", outstanding_);
  for (auto& chunk : chunks_) map_.erase(chunk.get());
  chunks_.clear();
  for (auto& list : free_) std::vector<void*>().swap(list);
  large_.clear();
  free_slabs_ = 0;
  outstanding_ = 0;
  watchers_.clear();
  generation_.fetch_add(1, std::memory_order_relaxed);
  initialized_.store(false, std::memory_order_release);
}

std::pair<Chunk*, size_t> DmaPool::find_free_slabs(size_t n) {
  if (n == 0 || n > free_slabs_) return {nullptr, 0};
  for (auto& chunk : chunks_) {
    if (!chunk->ready) continue;
    size_t run = 0;
    for (size_t i = 0; i < chunk->slabs(); ++i) {
      run = chunk->state(i) == kSlabFree ? run + 1 : 0;
      if (run == n) return {chunk.get(), i + 1 - n};
    }
  }
  return {nullptr, 0};
}

bool DmaPool::carve(int cls) {
  auto [chunk, slab] = find_free_slabs(1);
  if (chunk == nullptr) return false;
  auto& list = free_[cls];
  size_t size = class_bytes(cls);
  size_t per_slab = kSlabBytes / size;
  // Room for every buffer of the class ever carved, so put() never reallocates.
  list.reserve(list.size() + per_slab);
  chunk->set_state(slab, static_cast<uint8_t>(kSlabClass + cls));
  --free_slabs_;
  // Highest first, so the lowest address is handed out first.
  uintptr_t base = chunk->slab_base(slab);
  for (size_t i = per_slab; i-- > 0;) list.push_back(reinterpret_cast<void*>(base + i * size));
  return true;
}

size_t DmaPool::take(int cls, void** out, size_t want) noexcept {
  try {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        auto& list = free_[cls];
        if (list.size() < want) carve(cls);
        size_t n = std::min(want, list.size());
        if (n > 0) {
          std::memcpy(out, list.data() + list.size() - n, n * sizeof(void*));
          list.resize(list.size() - n);
          outstanding_ += n * class_bytes(cls);
          return n;
        }
      }
      if (!grow(kSlabBytes)) return 0;
    }
  } catch (const std::bad_alloc&) {
    log::error("DMA memory: out of heap memory for the pool's free lists");
    return 0;
  }
}

void DmaPool::put(int cls, void* const* in, size_t n) noexcept {
  std::lock_guard lock(mu_);
  try {
    free_[cls].insert(free_[cls].end(), in, in + n);
    outstanding_ -= n * class_bytes(cls);
  } catch (const std::bad_alloc&) {
    // Only a double free can outgrow the reserved capacity.
    log::error("DMA memory: free list overflow (double free?); {} buffers leaked", n);
  }
}

void* DmaPool::alloc_large(size_t bytes) noexcept {
  size_t n = round_up(bytes, kSlabBytes) >> kSlabShift;
  try {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        auto [chunk, slab] = find_free_slabs(n);
        if (chunk != nullptr) {
          uintptr_t start = chunk->slab_base(slab);
          large_.emplace(start, n);
          for (size_t i = 0; i < n; ++i) chunk->set_state(slab + i, kSlabLarge);
          free_slabs_ -= n;
          outstanding_ += n << kSlabShift;
          return reinterpret_cast<void*>(start);
        }
      }
      if (!grow(n << kSlabShift)) return nullptr;
    }
  } catch (const std::bad_alloc&) {
    log::error("DMA memory: out of heap memory for the pool's bookkeeping");
    return nullptr;
  }
}

void DmaPool::free_large(void* p) noexcept {
  std::lock_guard lock(mu_);
  auto it = large_.find(reinterpret_cast<uintptr_t>(p));
  Chunk* chunk = map_.lookup(p);
  if (it == large_.end() || chunk == nullptr) {
    log::error("dma_free({}): not the start of a DMA buffer", p);
    return;
  }
  size_t slab = chunk->slab_of(it->first);
  for (size_t i = 0; i < it->second; ++i) chunk->set_state(slab + i, kSlabFree);
  free_slabs_ += it->second;
  outstanding_ -= it->second << kSlabShift;
  large_.erase(it);
}

bool DmaPool::grow(size_t min_bytes) {
  std::lock_guard grow_lock(grow_mu_);
  {
    // Another thread may have grown the pool while we waited.
    std::lock_guard lock(mu_);
    if (find_free_slabs(min_bytes >> kSlabShift).first != nullptr) return true;
  }
  Status st = grow_locked(min_bytes, std::max(options_.chunk_bytes, min_bytes));
  if (!st.ok()) {
    log::error("DMA memory exhausted: {}", st.to_string());
    return false;
  }
  return true;
}

Status DmaPool::grow_locked(size_t min_bytes, size_t want_bytes) {
  auto mapped = map_chunk(min_bytes, want_bytes);
  if (!mapped.ok()) return mapped.status();
  std::unique_ptr<Chunk> owned = std::move(mapped).value();
  Chunk* chunk = owned.get();
  try {
    std::lock_guard lock(mu_);
    chunks_.reserve(chunks_.size() + 1);
  } catch (const std::bad_alloc&) {
    return Status(Errc::no_space, "out of heap memory for the chunk list");
  }
  if (!map_.insert(chunk)) {
    return Status(Errc::no_space, fmt::format("cannot index a chunk at {:#x}", chunk->base()));
  }
  {
    std::lock_guard lock(mu_);
    chunks_.push_back(std::move(owned));  // capacity reserved above: cannot throw
  }
  // Watchers see the chunk (e.g. register it with io_uring or VFIO) before any of it is used.
  iovec region{reinterpret_cast<void*>(chunk->base()), chunk->bytes()};
  for (auto& [handle, cb] : watchers_) {
    try {
      cb(region);
    } catch (const std::exception& e) {
      log::error("DMA region watcher {} failed: {}", handle, e.what());
    }
  }
  {
    std::lock_guard lock(mu_);
    chunk->ready = true;
    free_slabs_ += chunk->slabs();
  }
  log::info("DMA memory: mapped {} MiB of {} at {:#x}", chunk->bytes() >> 20,
            chunk->hugepages() ? "2 MiB hugepages" : "ordinary memory", chunk->base());
  return Status::Ok();
}

Result<std::unique_ptr<Chunk>> DmaPool::map_chunk(size_t min_bytes, size_t want) {
  if (options_.hugepages == HugepageMode::off) return Chunk::map_ordinary(want);

  uint64_t reserved = reserved_hugepages();
  std::string why = "no 2 MiB hugepages are reserved (nr_hugepages is 0)";
  if (reserved > 0) {
    auto r = Chunk::map_hugepages(want);
    // Fewer hugepages left than a whole chunk: take just what is needed.
    if (!r.ok() && want > min_bytes) r = Chunk::map_hugepages(min_bytes);
    if (r.ok()) return r;
    why = fmt::format("{} ({} hugepages reserved)", r.status().message(), reserved);
  }
  if (options_.hugepages == HugepageMode::required) {
    return Status(Errc::no_space, fmt::format("hugepages required but unavailable: {}", why));
  }
  notice_fallback_once(why);
  return Chunk::map_ordinary(want);
}

std::vector<iovec> DmaPool::regions() {
  std::lock_guard lock(mu_);
  std::vector<iovec> out;
  out.reserve(chunks_.size());
  for (auto& chunk : chunks_) out.push_back({reinterpret_cast<void*>(chunk->base()), chunk->bytes()});
  return out;
}

bool DmaPool::hugepage_backed() {
  std::lock_guard lock(mu_);
  return !chunks_.empty() &&
         std::all_of(chunks_.begin(), chunks_.end(), [](auto& c) { return c->hugepages(); });
}

uint64_t DmaPool::watch(DmaRegionCallback cb) {
  std::lock_guard grow_lock(grow_mu_);
  for (const iovec& region : regions()) cb(region);
  uint64_t handle = next_watch_++;
  watchers_.emplace_back(handle, std::move(cb));
  return handle;
}

void DmaPool::unwatch(uint64_t handle) {
  std::lock_guard grow_lock(grow_mu_);
  std::erase_if(watchers_, [&](auto& w) { return w.first == handle; });
}

DmaStats DmaPool::stats() {
  std::lock_guard lock(mu_);
  DmaStats s;
  for (auto& chunk : chunks_) s.mapped_bytes += chunk->bytes();
  s.chunks = chunks_.size();
  s.free_bytes = free_slabs_ << kSlabShift;
  for (int c = 0; c < kClasses; ++c) s.free_bytes += free_[c].size() * class_bytes(c);
  s.outstanding_bytes = outstanding_;
  return s;
}

}  // namespace sluice::env::detail
