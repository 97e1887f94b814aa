#include "fs/read_cache.h"

#include <cstring>

namespace sluice::fs {

ReadCache::ReadCache(uint64_t capacity_bytes) : per_shard_(capacity_bytes / kShards) {}

bool ReadCache::lookup(const Key& k, uint64_t off, size_t n, char* dst) {
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end() || it->second->len < off + n) return false;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  std::memcpy(dst, it->second->data.get() + off, n);
  return true;
}

void ReadCache::insert(const Key& k, const char* data, size_t len) {
  if (len > per_shard_) return;
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  if (auto it = s.map.find(k); it != s.map.end()) {
    s.bytes -= it->second->len;
    s.lru.erase(it->second);
    s.map.erase(it);
  }
  while (s.bytes + len > per_shard_ && !s.lru.empty()) {
    s.bytes -= s.lru.back().len;
    s.map.erase(s.lru.back().key);
    s.lru.pop_back();
  }
  Entry e{k, std::make_unique<char[]>(len), len};
  std::memcpy(e.data.get(), data, len);
  s.lru.push_front(std::move(e));
  s.map[k] = s.lru.begin();
  s.bytes += len;
}

}  // namespace sluice::fs
