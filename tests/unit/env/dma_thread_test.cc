// DMA memory used from several threads at once, each freeing buffers the others allocated.
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "dma_test_util.h"
#include "base/size.h"
#include "env/env.h"

namespace sluice::env {
namespace {

using DmaThreads = testing::DmaTest;

struct Buf {
  unsigned char* p;
  size_t size;
  uint64_t tag;
};

// Marks the first, middle and last 64 bytes (or all of a small buffer) with the tag.
void stamp(const Buf& b) {
  auto mark = [&](size_t off) {
    size_t n = std::min<size_t>(64, b.size - off);
    std::memset(b.p + off, static_cast<int>(b.tag & 0xff), n);
    std::memcpy(b.p + off, &b.tag, std::min(n, sizeof b.tag));
  };
  mark(0);
  mark(b.size / 2);
  mark(b.size > 64 ? b.size - 64 : 0);
}

bool stamped(const Buf& b) {
  auto ok = [&](size_t off) {
    size_t n = std::min<size_t>(64, b.size - off);
    uint64_t tag = 0;
    std::memcpy(&tag, b.p + off, std::min(n, sizeof tag));
    if (n >= sizeof tag && tag != b.tag) return false;
    for (size_t i = sizeof tag; i < n; ++i) {
      if (b.p[off + i] != (b.tag & 0xff)) return false;
    }
    return true;
  };
  return ok(0) && ok(b.size / 2) && ok(b.size > 64 ? b.size - 64 : 0);
}

// Threads allocate, stamp and either free a buffer themselves or pass it to a neighbour,
// which checks the stamp and frees it: cross-thread frees, cache refills and drains, and
// pool growth all race.
void stress(int threads, int iterations) {
  std::vector<std::mutex> mu(threads);
  std::vector<std::deque<Buf>> inbox(threads);
  std::atomic<int> corrupt{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
      std::vector<Buf> mine;
      auto take_inbox = [&] {
        std::deque<Buf> got;
        {
          std::lock_guard lock(mu[t]);
          got.swap(inbox[t]);
        }
        for (const Buf& b : got) {
          if (!stamped(b)) ++corrupt;
          dma_free(b.p);
        }
      };
      for (int i = 0; i < iterations; ++i) {
        uint64_t r = rng();
        size_t size = r % 211 == 0 ? 2 * kMiB + r % (3 * kMiB)  // large, now and then
                    : r % 17 == 0  ? 1 + r % (2 * kMiB)
                                   : 512 + r % (64 * 1024);
        Buf b{static_cast<unsigned char*>(dma_alloc(size, size_t{1} << (r % 13))), size,
              (static_cast<uint64_t>(t) << 32) | static_cast<uint64_t>(i)};
        if (b.p == nullptr) {
          ++failed;
          continue;
        }
        stamp(b);
        if (r & 1) {
          int to = static_cast<int>((static_cast<uint64_t>(t) + 1 + (r >> 8) % (threads - 1)) % threads);
          std::lock_guard lock(mu[to]);
          inbox[to].push_back(b);
        } else {
          mine.push_back(b);
        }
        if (mine.size() > 32 || (r >> 4) % 8 == 0) {
          for (const Buf& m : mine) {
            if (!stamped(m)) ++corrupt;
            dma_free(m.p);
          }
          mine.clear();
        }
        if (i % 16 == 0) take_inbox();
      }
      for (const Buf& m : mine) {
        if (!stamped(m)) ++corrupt;
        dma_free(m.p);
      }
    });
  }
  for (auto& th : pool) th.join();
  // What was still in flight to a neighbour.
  for (auto& box : inbox) {
    for (const Buf& b : box) {
      if (!stamped(b)) ++corrupt;
      dma_free(b.p);
    }
  }
  EXPECT_EQ(corrupt.load(), 0);
  EXPECT_EQ(failed.load(), 0);
}

TEST_F(DmaThreads, TwoThreadsCrossFree) {
  stress(2, 4000);
  dma_teardown();  // drains this thread's cache (it freed the leftovers)
  EXPECT_EQ(dma_stats().outstanding_bytes, 0u);
}

TEST_F(DmaThreads, FourThreadsCrossFree) {
  stress(4, 4000);
  dma_teardown();
  EXPECT_EQ(dma_stats().outstanding_bytes, 0u);
}

TEST_F(DmaThreads, ExitedThreadsGiveEverythingBack) {
  stress(3, 2000);
  // The workers are gone and drained; only this thread's cache may hold anything.
  void* p = dma_alloc(4096);
  ASSERT_NE(p, nullptr);
  dma_free(p);
  std::thread([] {}).join();
  DmaStats s = dma_stats();
  EXPECT_LE(s.outstanding_bytes, 40 * kMiB);  // bounded by one thread's caches
  EXPECT_EQ(s.free_bytes + s.outstanding_bytes, s.mapped_bytes);
}

TEST_F(DmaThreads, BufferFreedByAnotherThreadIsReused) {
  void* p = dma_alloc(8192);
  ASSERT_NE(p, nullptr);
  size_t before = dma_stats().outstanding_bytes;  // p and the rest of this thread's batch
  std::thread([p] {
    dma_free(p);
    void* q = dma_alloc(8192);
    EXPECT_EQ(q, p);  // it went into this thread's cache
    dma_free(q);
  }).join();
  // The other thread's exit gave p back to the pool.
  EXPECT_EQ(dma_stats().outstanding_bytes, before - 8192);
}

// A thread_local made before the thread first used DMA memory is destroyed after the
// thread's cache was drained; what it frees then goes straight to the pool.
TEST_F(DmaThreads, FreesDuringThreadExitStillReachThePool) {
  std::thread([] {
    static thread_local std::vector<DmaBuffer> late;  // constructed before the cache
    late.reserve(8);
    for (int i = 0; i < 8; ++i) late.emplace_back(size_t{4096} << (i % 3));
    void* p = dma_alloc(4096);  // and some traffic through the cache itself
    dma_free(p);
  }).join();
  EXPECT_EQ(dma_stats().outstanding_bytes, 0u);
}

TEST_F(DmaThreads, ConcurrentFirstUseInitializesOnce) {
  std::vector<std::thread> ts;
  std::atomic<int> failed{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      void* p = dma_alloc(4096);
      if (p == nullptr) ++failed;
      dma_free(p);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(dma_stats().chunks, 1u);
  EXPECT_EQ(dma_stats().outstanding_bytes, 0u);
}

}  // namespace
}  // namespace sluice::env
