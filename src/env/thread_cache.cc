#include "env/thread_cache.h"

#include <cstdint>

#include "env/dma_pool.h"
#include "env/size_class.h"

namespace sluice::env::detail {
namespace {

struct ThreadCache {
  uint64_t generation;  // of the pool the cached pointers came from
  uint32_t count[kClasses];
  void* slots[kClasses][kMaxCached];
};

enum class CacheState : uint8_t { unused, live, gone };

// Plain (trivially destructible) thread-locals: no guard on access.
thread_local constinit ThreadCache t_cache{};
thread_local constinit CacheState t_state = CacheState::unused;

void drain(ThreadCache& tc) {
  DmaPool& pool = DmaPool::get();
  if (tc.generation == pool.generation()) {
    for (int c = 0; c < kClasses; ++c) {
      if (tc.count[c] > 0) pool.put(c, tc.slots[c], tc.count[c]);
    }
  }
  for (auto& n : tc.count) n = 0;
}

// Its destructor, registered on a thread's first use of the cache, drains it at thread exit.
struct Reaper {
  bool armed = false;
  ~Reaper() {
    if (!armed) return;
    drain(t_cache);
    t_state = CacheState::gone;
  }
};
thread_local Reaper t_reaper;

// The calling thread's cache, or nullptr once the thread is exiting (its destructors may
// still free buffers: those go straight to the pool).
ThreadCache* current() {
  if (t_state != CacheState::live) [[unlikely]] {
    if (t_state == CacheState::gone) return nullptr;
    t_reaper.armed = true;  // first touch of t_reaper registers its destructor
    t_state = CacheState::live;
  }
  uint64_t generation = DmaPool::get().generation();
  if (t_cache.generation != generation) [[unlikely]] {
    // The pool was torn down since this cache was filled: its pointers are gone.
    for (auto& n : t_cache.count) n = 0;
    t_cache.generation = generation;
  }
  return &t_cache;
}

}  // namespace

void* cache_alloc(int cls) noexcept {
  ThreadCache* tc = current();
  if (tc == nullptr) {
    void* p = nullptr;
    return DmaPool::get().take(cls, &p, 1) ? p : nullptr;
  }
  uint32_t& n = tc->count[cls];
  if (n == 0) {
    n = static_cast<uint32_t>(DmaPool::get().take(cls, tc->slots[cls], cache_batch(cls)));
    if (n == 0) return nullptr;
  }
  return tc->slots[cls][--n];
}

void cache_free(int cls, void* p) noexcept {
  ThreadCache* tc = current();
  if (tc == nullptr) {
    DmaPool::get().put(cls, &p, 1);
    return;
  }
  uint32_t& n = tc->count[cls];
  if (n == cache_capacity(cls)) {
    uint32_t batch = cache_batch(cls);
    DmaPool::get().put(cls, &tc->slots[cls][n - batch], batch);
    n -= batch;
  }
  tc->slots[cls][n++] = p;
}

void cache_drain() noexcept {
  if (ThreadCache* tc = current()) drain(*tc);
}

}  // namespace sluice::env::detail
