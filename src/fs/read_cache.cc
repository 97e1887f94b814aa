#include "fs/read_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "env/env.h"

namespace sluice::fs {
namespace {
constexpr uint64_t kSlabBytes = 2u << 20;
}  // namespace

// At least one chunk a shard, so that a cache smaller than 16 chunks still caches.
ReadCache::ReadCache(uint64_t capacity_bytes)
    : per_shard_(capacity_bytes == 0 ? 0 : std::max<uint64_t>(1, capacity_bytes / kChunk / kShards)) {}

ReadCache::~ReadCache() {
  for (auto [p, bytes] : slabs_) ::munmap(p, bytes);
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
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end() || it->second->len < off + n) return false;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  std::memcpy(dst, it->second->data + off, n);
  return true;
}

ReadCache::Entry* ReadCache::slot(Shard& s, const Key& k) {
  if (auto it = s.map.find(k); it != s.map.end()) {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    it->second->len = 0;
    return &*it->second;
  }
  char* fresh = s.map.size() < per_shard_ ? new_buffer() : nullptr;
  if (fresh != nullptr) {
    s.lru.push_front(Entry{k, fresh, 0});
  } else if (!s.lru.empty()) {
    // Reuse the least recent entry's node and buffer: no allocation, no page fault.
    auto last = std::prev(s.lru.end());
    s.map.erase(last->key);
    s.lru.splice(s.lru.begin(), s.lru, last);
  } else {
    return nullptr;
  }
  Entry& e = s.lru.front();
  e.key = k;
  e.len = 0;
  s.map[k] = s.lru.begin();
  return &e;
}

void ReadCache::insert(const Key& k, const char* data, size_t len) {
  if (per_shard_ == 0 || len == 0 || len > kChunk) return;
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  if (Entry* e = slot(s, k)) {
    std::memcpy(e->data, data, len);
    e->len = len;
  }
}

void ReadCache::fill(uint64_t ino, uint64_t epoch, uint64_t off, const char* data, size_t n) {
  if (per_shard_ == 0) return;
  while (n > 0) {
    const uint64_t chunk = off / kChunk, at = off % kChunk;
    const size_t take = std::min<uint64_t>(n, kChunk - at);
    const Key k{ino, epoch, chunk};
    Shard& s = shard(k);
    {
      std::lock_guard lock(s.mu);
      if (at == 0) {
        if (Entry* e = slot(s, k)) {
          std::memcpy(e->data, data, take);
          e->len = take;
        }
      } else if (auto it = s.map.find(k); it != s.map.end() && it->second->len == at) {
        std::memcpy(it->second->data + at, data, take);
        it->second->len = at + take;
      }
    }
    off += take, data += take, n -= take;
  }
}

}  // namespace sluice::fs
