// The read cache (src/fs/read_cache.h) on its own, and a writer that keeps what it writes
// there (OpenOptions::cache_writes): a reader of a freshly written file is served without a
// device read, and never sees stale bytes.
#include "fs/read_cache.h"

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "fs_test_support.h"

namespace sluice::fs::testing {
namespace {

constexpr uint64_t kChunk = ReadCache::kChunk;

std::string cached(ReadCache& c, uint64_t ino, uint64_t epoch, uint64_t off, size_t n) {
  std::string out(n, '\0');
  const uint64_t chunk = off / kChunk;
  if (!c.lookup({ino, epoch, chunk}, off % kChunk, n, out.data())) return "<miss>";
  return out;
}

TEST(ReadCache, FillCachesWhatStartsOrContinuesAChunk) {
  ReadCache c(64 * kChunk);
  const std::string data = pattern(1, 3 * kChunk);
  // Bytes [0, 1.5 chunks): chunk 0 whole, chunk 1 half.
  c.fill(7, 0, 0, data.data(), kChunk + kChunk / 2);
  EXPECT_EQ(cached(c, 7, 0, 100, 4000), data.substr(100, 4000));
  EXPECT_EQ(cached(c, 7, 0, kChunk + 10, 100), data.substr(kChunk + 10, 100));
  EXPECT_EQ(cached(c, 7, 0, kChunk + kChunk / 2 - 1, 2), "<miss>");  // not yet written
  // The next bytes continue chunk 1 in place and start chunk 2.
  c.fill(7, 0, kChunk + kChunk / 2, data.data() + kChunk + kChunk / 2, kChunk);
  EXPECT_EQ(cached(c, 7, 0, kChunk + kChunk / 2 - 1, 2), data.substr(kChunk + kChunk / 2 - 1, 2));
  EXPECT_EQ(cached(c, 7, 0, 2 * kChunk, 4096), data.substr(2 * kChunk, 4096));
  // Another epoch or file sees none of it.
  EXPECT_EQ(cached(c, 7, 1, 0, 10), "<miss>");
  EXPECT_EQ(cached(c, 8, 0, 0, 10), "<miss>");
}

TEST(ReadCache, FillSkipsAChunkWhoseBeginningIsNotCached) {
  ReadCache c(64 * kChunk);
  const std::string data = pattern(2, 2 * kChunk);
  c.fill(3, 0, 4096, data.data() + 4096, kChunk);  // starts inside chunk 0, which is not cached
  EXPECT_EQ(cached(c, 3, 0, 4096, 10), "<miss>");
  EXPECT_EQ(cached(c, 3, 0, kChunk, 4097), "<miss>");  // chunk 1 holds only 4096 bytes
  EXPECT_TRUE(cached(c, 3, 0, kChunk, 4096) == data.substr(kChunk, 4096));
  // A cached chunk that does not end exactly where the bytes start is left as it is.
  c.insert({3, 0, 0}, data.data(), 1000);
  c.fill(3, 0, 2000, data.data() + 2000, 1000);
  EXPECT_EQ(cached(c, 3, 0, 1500, 10), "<miss>");
  EXPECT_EQ(cached(c, 3, 0, 0, 1000), data.substr(0, 1000));
}

TEST(ReadCache, HoldsAtMostItsCapacity) {
  ReadCache c(16 * kChunk);  // two sets of eight
  EXPECT_EQ(c.capacity_chunks(), 16u);
  const std::string data = pattern(3, kChunk);
  for (uint64_t i = 0; i < 1000; ++i) c.insert({i, 0, 0}, data.data(), kChunk);
  int held = 0;
  for (uint64_t i = 0; i < 1000; ++i) held += cached(c, i, 0, 0, 16) != "<miss>";
  EXPECT_LE(held, 16);
  EXPECT_GT(held, 0);
  EXPECT_EQ(cached(c, 999, 0, 0, kChunk), data);  // the newest is there, whole
  // A chunk replaced by a shorter one serves only the shorter one.
  c.insert({999, 0, 0}, data.data(), 100);
  EXPECT_EQ(cached(c, 999, 0, 0, 101), "<miss>");
  EXPECT_EQ(cached(c, 999, 0, 0, 100), data.substr(0, 100));
}

TEST(ReadCache, AChunkThatIsReadOutlivesAStreamOfChunksReadOnce) {
  ReadCache c(ReadCache::kWays * kChunk);  // one set: every key competes for the same ways
  ASSERT_EQ(c.capacity_chunks(), uint64_t{ReadCache::kWays});
  const std::string data = pattern(4, kChunk);
  c.insert({1, 0, 0}, data.data(), kChunk);
  for (uint64_t i = 100; i < 1100; ++i) {
    ASSERT_EQ(cached(c, 1, 0, 4096, 4096), data.substr(4096, 4096)) << "evicted after " << i - 100 << " inserts";
    c.insert({i, 0, 0}, data.data(), kChunk);
  }
  // Once it is no longer read, the stream pushes it out.
  for (uint64_t i = 2000; i < 2000 + 4 * ReadCache::kWays; ++i) c.insert({i, 0, 0}, data.data(), kChunk);
  EXPECT_EQ(cached(c, 1, 0, 0, 16), "<miss>");
}

// Readers copy out with no lock while writers replace, evict and grow entries: every hit
// must return exactly the bytes of the chunk asked for (run under TSan by the test command).
TEST(ReadCache, ConcurrentReadersNeverSeeAnotherChunksBytes) {
  ReadCache c(16 * kChunk);
  constexpr uint64_t kFiles = 12, kChunks = 4;
  std::vector<std::string> content;  // file i's bytes
  for (uint64_t i = 0; i < kFiles; ++i) content.push_back(pattern(100 + i, kChunks * kChunk));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> hits{0}, wrong{0};
  auto reader = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string out(kChunk, '\0');
    // At least 20,000 lookups each, so that the readers race the writers even when the
    // scheduler runs the writers first.
    for (int i = 0; i < 200000 && (i < 20000 || !stop.load(std::memory_order_relaxed)); ++i) {
      const uint64_t ino = rng() % kFiles, chunk = rng() % kChunks;
      const uint64_t off = rng() % kChunk, n = 1 + rng() % std::min<uint64_t>(8192, kChunk - off);
      if (!c.lookup({ino, 0, chunk}, off, n, out.data())) continue;
      hits.fetch_add(1, std::memory_order_relaxed);
      if (std::memcmp(out.data(), content[ino].data() + chunk * kChunk + off, n) != 0) wrong.fetch_add(1);
    }
  };
  auto writer = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 5000; ++i) {
      const uint64_t ino = rng() % kFiles, chunk = rng() % kChunks;
      const char* src = content[ino].data() + chunk * kChunk;
      if (rng() % 2 == 0) {
        c.insert({ino, 0, chunk}, src, 1 + rng() % kChunk);
      } else {
        // A writer appending the chunk in pieces: the first starts it, the rest grow it.
        const uint64_t cut = 1 + rng() % (kChunk - 1);
        c.fill(ino, 0, chunk * kChunk, src, cut);
        c.fill(ino, 0, chunk * kChunk + cut, src + cut, kChunk - cut);
      }
    }
  };
  for (uint64_t ino = 0; ino < kFiles; ++ino)  // something to hit from the first lookup on
    for (uint64_t chunk = 0; chunk < kChunks; ++chunk) c.insert({ino, 0, chunk}, content[ino].data() + chunk * kChunk, kChunk);
  std::vector<std::thread> threads;
  threads.emplace_back(reader, 1);
  threads.emplace_back(reader, 2);
  std::thread w1(writer, 3), w2(writer, 4);
  w1.join();
  w2.join();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
}

TEST_P(FsTest, WrittenTablesAreReadFromTheCache) {
  remount({.read_cache_bytes = 8u << 20, .readahead_bytes = 0});
  const std::string data = pattern(31, 1536 * 1024 + 777);  // more than one write buffer
  auto w = fs_->open("/t.sst", {.write = true, .create = true, .cache_writes = true});
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  for (size_t off = 0; off < data.size(); off += 10000) {
    const size_t n = std::min<size_t>(10000, data.size() - off);
    ASSERT_TRUE((*w)->append(data.data() + off, n).ok());
  }
  ASSERT_TRUE((*w)->sync().ok());
  ASSERT_TRUE((*w)->close().ok());

  auto r = open_r("/t.sst");
  const FsStat before = fs_->statfs();
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300; ++i) {
    // Below the last block: the file's final partial block was rewritten by the sync, and
    // is read from the device like any uncached byte.
    const uint64_t off = rng() % (data.size() / 4096 * 4096 - 5000);
    std::string out(1 + rng() % 4999, '\0');
    ASSERT_EQ(*r->pread(out.data(), out.size(), off), out.size());
    ASSERT_EQ(out, data.substr(off, out.size())) << off;
  }
  const FsStat after = fs_->statfs();
  EXPECT_EQ(after.cache_misses, before.cache_misses);
  EXPECT_GE(after.cache_hits - before.cache_hits, 300u);

  // A file written without the option is read from the device first.
  write_file("/t.log", data);
  auto l = open_r("/t.log");
  std::string out(100, '\0');
  ASSERT_EQ(*l->pread(out.data(), 100, 5), 100u);
  EXPECT_EQ(out, data.substr(5, 100));
  EXPECT_EQ(fs_->statfs().cache_misses, after.cache_misses + 1);

  // Overwritten bytes are never served from what the writer cached before.
  auto w2 = fs_->open("/t.sst", {.write = true, .cache_writes = true});
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->pwrite("CHANGED", 7, 70000).ok());
  ASSERT_TRUE((*w2)->sync().ok());
  ASSERT_TRUE((*w2)->close().ok());
  ASSERT_EQ(*r->pread(out.data(), 100, 69990), 100u);
  std::string want = data.substr(69990, 100);
  want.replace(10, 7, "CHANGED");
  EXPECT_EQ(out, want);
}

}  // namespace
}  // namespace sluice::fs::testing
