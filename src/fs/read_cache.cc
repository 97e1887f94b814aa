#include "fs/read_cache.h"

#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "env/env.h"

namespace sluice::fs {
namespace {
constexpr uint64_t kSlabBytes = 2u << 20;
}  // namespace

// At least one set, so that a cache smaller than a set still caches.
ReadCache::ReadCache(uint64_t capacity_bytes)
    : set_count_(capacity_bytes == 0 ? 0 : std::max<uint64_t>(1, capacity_bytes / kChunk / kWays)),
      sets_(set_count_ == 0 ? nullptr : new Set[set_count_]) {}

ReadCache::~ReadCache() {
  for (auto [p, bytes] : slabs_) ::munmap(p, bytes);
}

// Mixes all three fields (splitmix64's finaliser): files are numbered densely and read
// from their start, so the raw fields alone would crowd the first sets.
uint64_t ReadCache::hash(const Key& k) {
  uint64_t h = k.ino * 0x9E3779B97F4A7C15ull ^ k.chunk * 0xBF58476D1CE4E5B9ull ^ k.epoch * 0x94D049BB133111EBull;
  h ^= h >> 31;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

char* ReadCache::new_buffer() {
  std::lock_guard lock(slab_mu_);
  if (slab_next_ == slab_end_) {
    const uint64_t bytes = std::min(kSlabBytes, (capacity_chunks() - buffers_made_) * kChunk);
    if (bytes == 0) return nullptr;
    void* p = env::map_committed_memory(bytes);
    if (p == MAP_FAILED) return nullptr;
    slabs_.emplace_back(static_cast<char*>(p), bytes);
    slab_next_ = static_cast<char*>(p);
    slab_end_ = slab_next_ + bytes;
  }
  char* b = slab_next_;
  slab_next_ += kChunk;
  ++buffers_made_;
  return b;
}

bool ReadCache::lookup(const Key& k, uint64_t off, size_t n, char* dst) {
  if (set_count_ == 0) return false;
  const uint64_t h = hash(k), tag = h | 1;
  Set& s = set_of(h);
  for (int i = 0; i < kWays; ++i) {
    if (s.tags[i].load(std::memory_order_relaxed) != tag) continue;
    Way& w = s.ways[i];
    // Acquire pairs with the release of the writer that filled the entry; the release
    // below lets the next writer know this copy is done.
    if (w.users.fetch_add(1, std::memory_order_acquire) & kWriting) {
      w.users.fetch_sub(1, std::memory_order_release);
      return false;
    }
    const bool mine = w.key == k;  // not another key with the same hash
    const bool hit = mine && w.len.load(std::memory_order_acquire) >= off + n;
    if (hit) {
      std::memcpy(dst, w.data + off, n);
      if (!w.referenced.load(std::memory_order_relaxed)) w.referenced.store(true, std::memory_order_relaxed);
    }
    w.users.fetch_sub(1, std::memory_order_release);
    if (mine) return hit;
  }
  return false;
}

ReadCache::Way* ReadCache::find(Set& s, const Key& k, uint64_t tag) {
  for (int i = 0; i < kWays; ++i) {
    if (s.tags[i].load(std::memory_order_relaxed) == tag && s.ways[i].key == k) return &s.ways[i];
  }
  return nullptr;
}

ReadCache::Way* ReadCache::claim(Set& s, const Key& k, uint64_t tag) {
  if (Way* w = find(s, k, tag)) {
    // Replaced in place, so a key is never in two ways. New readers back off from now on;
    // the ones inside are finishing a copy, which takes no lock and does not block.
    w->users.fetch_or(kWriting, std::memory_order_acquire);
    for (int spins = 0; w->users.load(std::memory_order_acquire) != kWriting; ++spins) {
      if (spins > 1000) sched_yield();  // a reader preempted mid-copy
    }
    w->len.store(0, std::memory_order_relaxed);
    return w;
  }
  auto try_own = [](Way& w) {
    uint32_t idle = 0;
    return w.users.compare_exchange_strong(idle, kWriting, std::memory_order_acquire);
  };
  Way* victim = nullptr;
  for (Way& w : s.ways) {
    if (w.data == nullptr && try_own(w)) {
      w.data = new_buffer();
      if (w.data != nullptr) victim = &w;
      else release(w);
      break;
    }
  }
  // CLOCK: two turns of the hand find an entry not read since the first, unless readers
  // are inside every one of them (then this chunk is not cached).
  for (int step = 0; victim == nullptr && step < 2 * kWays; ++step) {
    Way& w = s.ways[s.hand];
    s.hand = (s.hand + 1) % kWays;
    if (w.data == nullptr) continue;
    if (w.referenced.load(std::memory_order_relaxed)) {
      w.referenced.store(false, std::memory_order_relaxed);
    } else if (try_own(w)) {
      victim = &w;
    }
  }
  if (victim == nullptr) return nullptr;
  s.tags[victim - s.ways].store(tag, std::memory_order_relaxed);
  victim->key = k;
  victim->len.store(0, std::memory_order_relaxed);
  victim->referenced.store(false, std::memory_order_relaxed);
  return victim;
}

void ReadCache::insert(const Key& k, const char* data, size_t len) {
  if (set_count_ == 0 || len == 0 || len > kChunk) return;
  const uint64_t h = hash(k);
  Set& s = set_of(h);
  std::lock_guard lock(s.writer_mu);
  if (Way* w = claim(s, k, h | 1)) {
    std::memcpy(w->data, data, len);
    w->len.store(static_cast<uint32_t>(len), std::memory_order_relaxed);
    release(*w);
  }
}

void ReadCache::fill(uint64_t ino, uint64_t epoch, uint64_t off, const char* data, size_t n) {
  if (set_count_ == 0) return;
  while (n > 0) {
    const uint64_t chunk = off / kChunk, at = off % kChunk;
    const size_t take = std::min<uint64_t>(n, kChunk - at);
    const Key k{ino, epoch, chunk};
    const uint64_t h = hash(k);
    Set& s = set_of(h);
    {
      std::lock_guard lock(s.writer_mu);
      if (at == 0) {
        if (Way* w = claim(s, k, h | 1)) {
          std::memcpy(w->data, data, take);
          w->len.store(static_cast<uint32_t>(take), std::memory_order_relaxed);
          release(*w);
        }
      } else if (Way* w = find(s, k, h | 1); w != nullptr && w->len.load(std::memory_order_relaxed) == at) {
        // Readers inside copy bytes below `at`; the release publishes the new ones.
        std::memcpy(w->data + at, data, take);
        w->len.store(static_cast<uint32_t>(at + take), std::memory_order_release);
      }
    }
    off += take, data += take, n -= take;
  }
}

}  // namespace sluice::fs
