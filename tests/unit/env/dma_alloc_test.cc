#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "base/size.h"
#include "env/env.h"
#include "dma_test_util.h"

namespace sluice::env {
namespace {

using testing::DmaTest;
using DmaAlloc = DmaTest;

bool inside_some_region(const void* p, size_t size, const std::vector<iovec>& regions) {
  auto a = reinterpret_cast<uintptr_t>(p);
  return std::any_of(regions.begin(), regions.end(), [&](const iovec& r) {
    auto base = reinterpret_cast<uintptr_t>(r.iov_base);
    return a >= base && a + size <= base + r.iov_len;
  });
}

void fill(void* p, size_t size, uint64_t tag) {
  auto* w = static_cast<uint64_t*>(p);
  for (size_t i = 0; i < size / 8; ++i) w[i] = tag * 0x9E3779B97F4A7C15ull + i;
  auto* b = static_cast<unsigned char*>(p);
  for (size_t i = size / 8 * 8; i < size; ++i) b[i] = static_cast<unsigned char>(tag + i);
}

bool check(const void* p, size_t size, uint64_t tag) {
  const auto* w = static_cast<const uint64_t*>(p);
  for (size_t i = 0; i < size / 8; ++i) {
    if (w[i] != tag * 0x9E3779B97F4A7C15ull + i) return false;
  }
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = size / 8 * 8; i < size; ++i) {
    if (b[i] != static_cast<unsigned char>(tag + i)) return false;
  }
  return true;
}

TEST_F(DmaAlloc, AlignedForManySizesAndAlignments) {
  const size_t sizes[] = {1,         512,          4095,         4096,     4097,    8192,
                          12288,     65536,        100000,       kMiB - 1, kMiB + 1, 2 * kMiB,
                          2 * kMiB + 1, 5 * kMiB,  24 * kMiB};
  const size_t aligns[] = {1, 512, 4096, 8192, 65536, kMiB, 2 * kMiB};
  std::vector<void*> held;
  for (size_t size : sizes) {
    for (size_t align : aligns) {
      void* p = dma_alloc(size, align);
      ASSERT_NE(p, nullptr) << size << " align " << align;
      size_t want = std::max(align, kDmaPageSize);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % want, 0u) << size << " align " << align;
      held.push_back(p);
    }
    void* p = dma_alloc(size);  // default alignment
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kDmaPageSize, 0u);
    held.push_back(p);
  }
  for (void* p : held) dma_free(p);
}

TEST_F(DmaAlloc, BuffersDoNotOverlapAndKeepTheirContents) {
  std::mt19937_64 rng(42);
  struct Buf {
    void* p;
    size_t size;
  };
  std::vector<Buf> bufs;
  for (int i = 0; i < 600; ++i) {
    // Mostly small, some up to 2 MiB, a few large.
    size_t size = i % 100 == 99 ? 3 * kMiB + rng() % (4 * kMiB)
                : i % 10 == 9   ? 1 + rng() % (2 * kMiB)
                                : 512 + rng() % 65536;
    void* p = dma_alloc(size);
    ASSERT_NE(p, nullptr) << size;
    fill(p, size, static_cast<uint64_t>(i));
    bufs.push_back({p, size});
  }
  for (size_t i = 0; i < bufs.size(); ++i) {
    EXPECT_TRUE(check(bufs[i].p, bufs[i].size, i)) << "buffer " << i << " was overwritten";
  }
  std::sort(bufs.begin(), bufs.end(), [](const Buf& a, const Buf& b) { return a.p < b.p; });
  for (size_t i = 1; i < bufs.size(); ++i) {
    EXPECT_LE(static_cast<char*>(bufs[i - 1].p) + bufs[i - 1].size, static_cast<char*>(bufs[i].p));
  }
  for (auto& b : bufs) dma_free(b.p);
}

TEST_F(DmaAlloc, ZallocZeroesReusedMemory) {
  constexpr size_t kSize = 3 * 4096 + 100;
  void* dirty = dma_alloc(kSize);
  ASSERT_NE(dirty, nullptr);
  std::memset(dirty, 0xAB, kSize);
  dma_free(dirty);
  auto* p = static_cast<unsigned char*>(dma_zalloc(kSize));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p, dirty);  // the thread cache hands the same buffer back
  EXPECT_TRUE(std::all_of(p, p + kSize, [](unsigned char c) { return c == 0; }));
  dma_free(p);
}

TEST_F(DmaAlloc, BadInputReturnsNullAndSaysWhy) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(dma_alloc(0), nullptr);
  EXPECT_EQ(dma_alloc(size_t{1} << 50), nullptr);
  EXPECT_EQ(dma_alloc(~size_t{0}), nullptr);
  EXPECT_EQ(dma_alloc(4096, 3), nullptr);
  EXPECT_EQ(dma_alloc(4096, 0), nullptr);
  EXPECT_EQ(dma_alloc(4096, 6000), nullptr);
  EXPECT_EQ(dma_alloc(4096, 4 * kMiB), nullptr);
  EXPECT_EQ(dma_zalloc(0), nullptr);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("size 0"), std::string::npos) << err;
  EXPECT_NE(err.find("more than physical memory"), std::string::npos) << err;
  EXPECT_NE(err.find("alignment 3 is not a power of two"), std::string::npos) << err;
  EXPECT_NE(err.find("alignment 4194304"), std::string::npos) << err;
}

TEST_F(DmaAlloc, FreeingForeignPointersIsLoggedNotFatal) {
  dma_free(nullptr);  // silently fine
  char* p = static_cast<char*>(dma_alloc(8192));
  ASSERT_NE(p, nullptr);
  void* large = dma_alloc(4 * kMiB);
  ASSERT_NE(large, nullptr);
  int on_stack = 0;
  std::vector<char> on_heap(100);
  ::testing::internal::CaptureStderr();
  dma_free(&on_stack);
  dma_free(on_heap.data());
  dma_free(p + 4096);                           // inside a buffer
  dma_free(static_cast<char*>(large) + 2 * kMiB);  // inside a large buffer
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not DMA memory"), std::string::npos) << err;
  EXPECT_NE(err.find("not the start of a DMA buffer"), std::string::npos) << err;
  dma_free(p);
  dma_free(large);
}

TEST_F(DmaAlloc, DmaBufferOwnsOneBuffer) {
  static_assert(!std::is_copy_constructible_v<DmaBuffer>);
  static_assert(!std::is_copy_assignable_v<DmaBuffer>);
  static_assert(std::is_nothrow_move_constructible_v<DmaBuffer>);
  {
    DmaBuffer a(10000);
    ASSERT_TRUE(a);
    EXPECT_EQ(a.size(), 10000u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % kDmaPageSize, 0u);
    std::memset(a.data(), 1, a.size());
    DmaBuffer b = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(b.size(), 10000u);
    DmaBuffer c = DmaBuffer::zeroed(5 * kMiB, 2 * kMiB);
    ASSERT_TRUE(c);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(c.data()) % (2 * kMiB), 0u);
    auto* bytes = static_cast<unsigned char*>(c.data());
    EXPECT_TRUE(std::all_of(bytes, bytes + c.size(), [](unsigned char x) { return x == 0; }));
    c = std::move(b);  // frees c's old buffer
    EXPECT_EQ(c.size(), 10000u);
    void* raw = c.release();
    EXPECT_FALSE(c);
    dma_free(raw);
    DmaBuffer failed(0);
    EXPECT_FALSE(failed);
    EXPECT_EQ(failed.size(), 0u);
  }
  dma_teardown();  // flush this thread's cache: nothing may still be out
  EXPECT_EQ(dma_stats().outstanding_bytes, 0u);
}

TEST_F(DmaAlloc, LargeBuffersReuseFreedSlabs) {
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::off}).ok());
  void* a = dma_alloc(40 * kMiB);
  ASSERT_NE(a, nullptr);
  std::memset(a, 7, 40 * kMiB);
  size_t mapped = dma_stats().mapped_bytes;
  EXPECT_GE(mapped, 40 * kMiB);
  dma_free(a);
  EXPECT_EQ(dma_stats().outstanding_bytes, 0u);
  for (int i = 0; i < 5; ++i) {
    void* b = dma_alloc(40 * kMiB - 12345);
    ASSERT_NE(b, nullptr);
    dma_free(b);
  }
  EXPECT_EQ(dma_stats().mapped_bytes, mapped);
}

TEST_F(DmaAlloc, RegionsCoverEveryBuffer) {
  EXPECT_TRUE(dma_regions().empty());
  std::vector<std::pair<void*, size_t>> held;
  // Enough to need several chunks.
  for (int i = 0; i < 80; ++i) {
    size_t size = i % 8 == 7 ? 5 * kMiB : size_t{4096} << (i % 8);
    void* p = dma_alloc(size);
    ASSERT_NE(p, nullptr);
    held.emplace_back(p, size);
  }
  auto regions = dma_regions();
  EXPECT_GE(regions.size(), 2u);
  size_t total = 0;
  for (const iovec& r : regions) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.iov_base) % (2 * kMiB), 0u);
    EXPECT_EQ(r.iov_len % (2 * kMiB), 0u);
    total += r.iov_len;
  }
  EXPECT_EQ(total, dma_stats().mapped_bytes);
  EXPECT_EQ(regions.size(), dma_stats().chunks);
  for (auto [p, size] : held) EXPECT_TRUE(inside_some_region(p, size, regions)) << p;
  for (auto [p, size] : held) dma_free(p);
}

TEST_F(DmaAlloc, WatchersSeeEveryRegionBeforeItIsUsed) {
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::off, .initial_bytes = 4 * kMiB,
                        .chunk_bytes = 8 * kMiB}).ok());
  std::vector<iovec> seen;
  uint64_t handle = dma_watch_regions([&](const iovec& r) { seen.push_back(r); });
  ASSERT_EQ(seen.size(), 1u);  // the initial chunk, replayed
  std::vector<std::pair<void*, size_t>> held;
  for (int i = 0; i < 20; ++i) {
    size_t size = i % 2 ? kMiB : 3 * kMiB;
    void* p = dma_alloc(size);
    ASSERT_NE(p, nullptr);
    // Already announced when we get it.
    EXPECT_TRUE(inside_some_region(p, size, seen)) << i;
    held.emplace_back(p, size);
  }
  EXPECT_GT(seen.size(), 2u);
  EXPECT_EQ(seen.size(), dma_regions().size());
  dma_unwatch_regions(handle);
  size_t before = seen.size();
  void* more = dma_alloc(20 * kMiB);  // needs a new chunk
  ASSERT_NE(more, nullptr);
  EXPECT_EQ(seen.size(), before);
  dma_free(more);
  for (auto [p, size] : held) dma_free(p);
}

TEST_F(DmaAlloc, InitRunsOnceUntilTeardown) {
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::off, .initial_bytes = 6 * kMiB}).ok());
  EXPECT_EQ(dma_stats().mapped_bytes, 6 * kMiB);
  EXPECT_FALSE(dma_hugepage_backed());
  Status again = dma_init({});
  EXPECT_EQ(again.code(), Errc::busy);
  void* p = dma_alloc(4096);
  ASSERT_NE(p, nullptr);
  dma_free(p);
  dma_teardown();
  EXPECT_EQ(dma_stats().mapped_bytes, 0u);
  EXPECT_TRUE(dma_regions().empty());
  // A pointer from the old pool is no longer DMA memory.
  EXPECT_EQ(dma_translate(p), kDmaBadIova);
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::off, .initial_bytes = 2 * kMiB}).ok());
  EXPECT_EQ(dma_stats().mapped_bytes, 2 * kMiB);
}

TEST_F(DmaAlloc, FirstAllocationInitializesLazily) {
  EXPECT_EQ(dma_stats().mapped_bytes, 0u);
  void* p = dma_alloc(4096);
  ASSERT_NE(p, nullptr);
  EXPECT_GT(dma_stats().mapped_bytes, 0u);
  EXPECT_EQ(dma_init({}).code(), Errc::busy);
  dma_free(p);
}

TEST_F(DmaAlloc, InitialSizeFromEnvironment) {
  setenv("SLUICE_DMA_MB", "10", 1);
  Status st = dma_init({.hugepages = HugepageMode::off});
  unsetenv("SLUICE_DMA_MB");
  ASSERT_TRUE(st.ok()) << st.to_string();
  DmaStats s = dma_stats();
  EXPECT_EQ(s.mapped_bytes, 10 * kMiB);
  EXPECT_EQ(s.chunks, 1u);
  EXPECT_EQ(s.free_bytes, 10 * kMiB);
}

TEST_F(DmaAlloc, HugepagesOffUsesOrdinaryMemory) {
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::off}).ok());
  std::vector<void*> held;
  for (size_t size : {size_t{512}, size_t{4096}, 64 * size_t{1024}, 2 * kMiB, 9 * kMiB}) {
    void* p = dma_alloc(size);
    ASSERT_NE(p, nullptr);
    fill(p, size, size);
    EXPECT_TRUE(check(p, size, size));
    held.push_back(p);
  }
  EXPECT_FALSE(dma_hugepage_backed());
  EXPECT_FALSE(dma_regions().empty());
  for (void* p : held) dma_free(p);
}

TEST_F(DmaAlloc, AutomaticFallsBackWithOneNotice) {
  if (testing::read_number(testing::kNrHugepages).value_or(0) > 0) {
    GTEST_SKIP() << "hugepages are reserved on this machine, so there is no fallback to see";
  }
  ::testing::internal::CaptureStderr();
  void* p = dma_alloc(4096);
  void* big = dma_alloc(64 * kMiB);  // another chunk, still ordinary memory
  dma_teardown();                    // and a whole new pool
  void* q = dma_alloc(4096);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(p, nullptr);
  ASSERT_NE(big, nullptr);
  ASSERT_NE(q, nullptr);
  EXPECT_FALSE(dma_hugepage_backed());
  size_t notices = 0;
  for (size_t at = err.find("using ordinary memory"); at != std::string::npos;
       at = err.find("using ordinary memory", at + 1)) {
    ++notices;
  }
  // Exactly once per process; another test in this process may have said it already.
  EXPECT_LE(notices, 1u) << err;
  dma_free(q);
}

TEST_F(DmaAlloc, ThreadExitReturnsCachedBuffers) {
  std::thread t([] {
    std::vector<void*> held;
    for (int i = 0; i < 300; ++i) held.push_back(dma_alloc(size_t{4096} << (i % 4)));
    for (void* p : held) dma_free(p);
    EXPECT_GT(dma_stats().outstanding_bytes, 0u);  // some stay in this thread's cache
  });
  t.join();
  EXPECT_EQ(dma_stats().outstanding_bytes, 0u);
}

}  // namespace
}  // namespace sluice::env
