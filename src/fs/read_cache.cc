#include "fs/read_cache.h"

#include <algorithm>
#include <cstring>

namespace sluice::fs {

// At least one chunk a shard, so that a cache smaller than 16 chunks still caches.
ReadCache::ReadCache(uint64_t capacity_bytes)
    : per_shard_(capacity_bytes == 0 ? 0 : std::max<uint64_t>(1, capacity_bytes / kChunk / kShards)) {}

bool ReadCache::lookup(const Key& k, uint64_t off, size_t n, char* dst) {
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end() || it->second->len < off + n) return false;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  std::memcpy(dst, it->second->data.get() + off, n);
  return true;
}

ReadCache::Entry& ReadCache::slot(Shard& s, const Key& k) {
  if (auto it = s.map.find(k); it != s.map.end()) {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    it->second->len = 0;
    return *it->second;
  }
  if (s.map.size() >= per_shard_) {
    // Reuse the least recent entry's node and buffer: no allocation, no page fault.
    auto last = std::prev(s.lru.end());
    s.map.erase(last->key);
    s.lru.splice(s.lru.begin(), s.lru, last);
  } else {
    s.lru.push_front(Entry{k, std::unique_ptr<char[]>(new char[kChunk]), 0});
  }
  Entry& e = s.lru.front();
  e.key = k;
  e.len = 0;
  s.map[k] = s.lru.begin();
  return e;
}

void ReadCache::insert(const Key& k, const char* data, size_t len) {
  if (per_shard_ == 0 || len == 0 || len > kChunk) return;
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  Entry& e = slot(s, k);
  std::memcpy(e.data.get(), data, len);
  e.len = len;
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
        Entry& e = slot(s, k);
        std::memcpy(e.data.get(), data, take);
        e.len = take;
      } else if (auto it = s.map.find(k); it != s.map.end() && it->second->len == at) {
        std::memcpy(it->second->data.get() + at, data, take);
        it->second->len = at + take;
      }
    }
    off += take, data += take, n -= take;
  }
}

}  // namespace sluice::fs
