// The optional buffered-read cache shared by every file of a mount (MountOptions::
// read_cache_bytes): 64 KiB chunks of file data, so unaligned readers of hot data skip the
// device. docs/read-path.md describes where it sits on the read path.
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
// A hit takes no lock and writes nothing shared but one counter of the entry it reads: the
// cache is set-associative (a key can live only in the kWays ways of the set its hash picks),
// the set's tags fit one cache line, and a reader announces itself on the entry it copies
// from, so that a writer never reuses an entry under it. Writers (insert, fill) take the
// set's mutex and evict by CLOCK: an entry read since the hand last passed gets a second
// chance, so a stream of chunks read once does not push out the hot ones.
//
// Every entry owns a buffer of one whole chunk, whatever it holds, so that a partial chunk
// can grow in place and an evicted buffer serves the next entry: once the cache is full it
// allocates nothing and takes no page fault. While it grows, buffers come from 2 MiB slabs
// committed when they are mapped (env::map_committed_memory, hugepages where the kernel
// allows): one fault per slab where a buffer from the heap took one per 4 KiB on first use,
// on the reading or writing thread, and in a virtual machine a fault costs microseconds.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace sluice::fs {

class ReadCache {
 public:
  static constexpr uint64_t kChunk = 64u << 10;
  // Ways per set: enough that set conflicts cost little against a fully associative cache,
  // few enough that a lookup's scan of the tags stays in one cache line.
  static constexpr int kWays = 8;

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
  // off+n bytes. Safe to call from any number of threads at once with the writers below.
  bool lookup(const Key& k, uint64_t off, size_t n, char* dst);
  // Caches the chunk's first `len` bytes (len <= kChunk), replacing what was cached.
  void insert(const Key& k, const char* data, size_t len);
  // A writer's bytes [off, off+n) of file `ino` just became stable: each chunk they start
  // is cached, and a cached chunk they continue (one that ends exactly at `off`) grows.
  // Bytes of a chunk whose beginning is not cached are skipped: they are read on demand.
  void fill(uint64_t ino, uint64_t epoch, uint64_t off, const char* data, size_t n);

  uint64_t capacity_chunks() const { return set_count_ * kWays; }

 private:
  struct alignas(64) Way {
    // Readers copying out of this entry, plus kWriting while a writer changes it. A reader
    // that finds kWriting set backs off (a miss); a writer takes the entry only when no
    // reader is in, so the key, buffer and bytes it changes are never read meanwhile.
    std::atomic<uint32_t> users{0};
    std::atomic<uint32_t> len{0};  // bytes cached; grows in place without kWriting (fill)
    std::atomic<bool> referenced{false};  // read since the CLOCK hand last passed
    Key key{~0ull, 0, 0};  // changed only with kWriting held
    char* data = nullptr;  // kChunk bytes in a slab; set once, with kWriting held
  };
  struct alignas(64) Set {
    std::atomic<uint64_t> tags[kWays];  // each way's key hash | 1; 0 when empty
    std::mutex writer_mu;  // insert and fill
    int hand = 0;          // CLOCK hand, under writer_mu
    Way ways[kWays];
  };
  static constexpr uint32_t kWriting = 1u << 31;

  static uint64_t hash(const Key& k);
  Set& set_of(uint64_t h) { return sets_[h % set_count_]; }
  // The way `k` lives in, if any (writer_mu held).
  Way* find(Set& s, const Key& k, uint64_t tag);
  // A way for `k`, owned by the caller (kWriting set) with nothing cached: the one that
  // holds `k` already, an empty one, or the CLOCK victim. Null when every way is being read
  // from or no buffer can be had. writer_mu held.
  Way* claim(Set& s, const Key& k, uint64_t tag);
  static void release(Way& w) { w.users.fetch_sub(kWriting, std::memory_order_release); }
  // A chunk buffer for an empty way (never more than capacity_chunks() in all).
  char* new_buffer();

  const uint64_t set_count_;
  std::unique_ptr<Set[]> sets_;

  std::mutex slab_mu_;
  std::vector<std::pair<char*, size_t>> slabs_;  // mapped regions
  char* slab_next_ = nullptr;
  char* slab_end_ = nullptr;
  uint64_t buffers_made_ = 0;
};

}  // namespace sluice::fs
