// The optional buffered-read cache shared by every file of a mount (MountOptions::
// read_cache_bytes): 64 KiB chunks of file data, kept in LRU order in 16 shards (one mutex
// each), so unaligned readers of hot data skip the device.
//
// A chunk gets there two ways: a reader that missed reads it from the device (insert), or a
// writer that just made appended bytes stable hands them over (fill), as a kernel's page
// cache keeps what was written. The second matters for a database: the table files a flush
// or compaction writes are read at once by readers and by the next compaction, and without
// it every first read of a new file would go to the device.
//
// Only bytes wholly below a file's device limit (on the device and no longer changed by
// appending) are cached; a truncate or overwrite bumps the inode's cache epoch, which is part
// of the key, so stale chunks are never found again (they age out).
//
// Every entry owns a buffer of one whole chunk, whatever it holds, so that a partial chunk
// can grow in place and an evicted buffer serves the next entry: once the cache is full it
// allocates nothing and takes no page fault. While it grows, buffers come from 2 MiB slabs
// committed when they are mapped (env::map_committed_memory, hugepages where the kernel
// allows): one fault per slab where a buffer from the heap took one per 4 KiB on first use,
// on the reading or writing thread, and in a virtual machine a fault costs microseconds.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice::fs {

class ReadCache {
 public:
  static constexpr uint64_t kChunk = 64u << 10;

  explicit ReadCache(uint64_t capacity_bytes);
  ~ReadCache();
  ReadCache(const ReadCache&) = delete;
  ReadCache& operator=(const ReadCache&) = delete;

  struct Key {
    uint64_t ino;
    uint64_t epoch;
    uint64_t chunk;  // file offset / kChunk
    bool operator==(const Key&) const = default;
  };
  // Copies [off, off+n) of the chunk (offsets within the chunk) if cached with at least
  // off+n bytes.
  bool lookup(const Key& k, uint64_t off, size_t n, char* dst);
  // Caches the chunk's first `len` bytes (len <= kChunk), replacing what was cached.
  void insert(const Key& k, const char* data, size_t len);
  // A writer's bytes [off, off+n) of file `ino` just became stable: each chunk they start
  // is cached, and a cached chunk they continue (one that ends exactly at `off`) grows.
  // Bytes of a chunk whose beginning is not cached are skipped: they are read on demand.
  void fill(uint64_t ino, uint64_t epoch, uint64_t off, const char* data, size_t n);

  uint64_t capacity_chunks() const { return per_shard_ * kShards; }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return static_cast<size_t>((k.ino * 0x9E3779B97F4A7C15ull) ^ (k.chunk * 0xBF58476D1CE4E5B9ull) ^ k.epoch);
    }
  };
  struct Entry {
    Key key;
    char* data;  // kChunk bytes, in a slab
    size_t len;  // of which cached
  };
  struct Shard {
    std::mutex mu;
    std::list<Entry> lru;  // front: most recent
    std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map;
  };
  static constexpr int kShards = 16;
  Shard& shard(const Key& k) { return shards_[KeyHash{}(k) % kShards]; }
  // The entry for `k`, new or emptied, at the front of the LRU list (s.mu held); null if
  // no memory is left for a new one.
  Entry* slot(Shard& s, const Key& k);
  // A chunk buffer for a new entry (never more than capacity_chunks() in all).
  char* new_buffer();

  const uint64_t per_shard_;  // chunks
  Shard shards_[kShards];

  std::mutex slab_mu_;
  std::vector<std::pair<char*, size_t>> slabs_;  // mapped regions
  char* slab_next_ = nullptr;
  char* slab_end_ = nullptr;
  uint64_t buffers_made_ = 0;
};

}  // namespace sluice::fs
