// The optional buffered-read cache shared by every file of a mount (MountOptions::
// read_cache_bytes): chunks of file data read through a bounce buffer, kept in LRU order in
// 16 shards (one mutex each), so unaligned readers of hot data skip the device.
//
// Only chunks that lie wholly below a file's device limit (bytes that are on the device and
// no longer change by appending) are cached; a truncate or overwrite bumps the inode's cache
// epoch, which is part of the key, so stale chunks are never found again (they age out).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace sluice::fs {

class ReadCache {
 public:
  static constexpr uint64_t kChunk = 64u << 10;

  explicit ReadCache(uint64_t capacity_bytes);

  struct Key {
    uint64_t ino;
    uint64_t epoch;
    uint64_t chunk;  // file offset / kChunk
    bool operator==(const Key&) const = default;
  };
  // Copies [off, off+n) of the chunk (offsets within the chunk) if cached with at least
  // off+n bytes.
  bool lookup(const Key& k, uint64_t off, size_t n, char* dst);
  void insert(const Key& k, const char* data, size_t len);

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return static_cast<size_t>((k.ino * 0x9E3779B97F4A7C15ull) ^ (k.chunk * 0xBF58476D1CE4E5B9ull) ^ k.epoch);
    }
  };
  struct Entry {
    Key key;
    std::unique_ptr<char[]> data;
    size_t len;
  };
  struct Shard {
    std::mutex mu;
    std::list<Entry> lru;  // front: most recent
    std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map;
    uint64_t bytes = 0;
  };
  static constexpr int kShards = 16;
  Shard& shard(const Key& k) { return shards_[KeyHash{}(k) % kShards]; }

  const uint64_t per_shard_;
  Shard shards_[kShards];
};

}  // namespace sluice::fs
