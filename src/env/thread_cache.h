// Per-thread caches over the shared pool: a small stack of free buffers per size class.
// alloc and free touch only the calling thread's cache (no lock, no heap); an empty cache
// refills, and a full one drains, half its capacity from/to the pool in one locked call.
// A buffer freed by another thread simply joins that thread's cache. At thread exit the
// cache drains back to the pool.
#pragma once

namespace sluice::env::detail {

void* cache_alloc(int cls) noexcept;
void cache_free(int cls, void* p) noexcept;
// Returns the calling thread's cached buffers to the pool.
void cache_drain() noexcept;

}  // namespace sluice::env::detail
