// The hugepage path. These tests reserve 2 MiB hugepages themselves when run as root (and
// restore the previous reservation afterwards); otherwise they skip.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dma_test_util.h"
#include "base/size.h"
#include "env/env.h"

namespace sluice::env {
namespace {

using testing::HugepageTest;
using DmaHugepages = HugepageTest;

// True when /proc/self/smaps says the mapping holding `p` is hugetlb-backed.
bool smaps_says_hugetlb(const void* p) {
  std::ifstream in("/proc/self/smaps");
  auto a = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool in_range = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's header line
      in_range = a >= lo && a < hi;
      continue;
    }
    if (in_range && line.rfind("KernelPageSize:", 0) == 0) return line.find("2048 kB") != std::string::npos;
  }
  return false;
}

TEST_F(DmaHugepages, RequiredModeMapsHugepages) {
  Status st = dma_init({.hugepages = HugepageMode::required, .chunk_bytes = 16 * kMiB});
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(dma_hugepage_backed());
  std::vector<std::pair<void*, size_t>> held;
  for (size_t size : {size_t{512}, size_t{4096}, 100 * size_t{1024}, 2 * kMiB, 6 * kMiB + 1}) {
    void* p = dma_alloc(size, 4096);
    ASSERT_NE(p, nullptr) << size;
    std::memset(p, 0x5A, size);
    EXPECT_TRUE(smaps_says_hugetlb(p)) << size;
    held.emplace_back(p, size);
  }
  for (const iovec& r : dma_regions()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.iov_base) % (2 * kMiB), 0u);
    EXPECT_EQ(r.iov_len % (2 * kMiB), 0u);
  }
  EXPECT_TRUE(dma_hugepage_backed());
  for (auto [p, size] : held) dma_free(p);
}

TEST_F(DmaHugepages, AutomaticModePrefersHugepages) {
  void* p = dma_alloc(4096);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(dma_hugepage_backed());
  EXPECT_TRUE(smaps_says_hugetlb(p));
  dma_free(p);
}

TEST_F(DmaHugepages, RequiredModeRunsOutCleanly) {
  uint64_t free_pages = testing::read_number(testing::kFreeHugepages).value_or(0);
  if (free_pages > 1024) GTEST_SKIP() << "too many free hugepages to exhaust quickly";
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::required, .chunk_bytes = 2 * kMiB}).ok());
  std::vector<void*> held;
  ::testing::internal::CaptureStderr();
  for (uint64_t i = 0; i <= free_pages + 1; ++i) {
    void* p = dma_alloc(2 * kMiB);
    if (p == nullptr) break;
    held.push_back(p);
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_LT(held.size(), free_pages + 2) << "never ran out";
  // It ran out because the system had no hugepage left, not early. (Not "held about
  // free_pages": test programs running beside this one may take some of the reservation.)
  EXPECT_LE(testing::read_number(testing::kFreeHugepages).value_or(0), 2u) << "gave up with hugepages still free";
  EXPECT_GT(held.size(), 0u);
  EXPECT_NE(err.find("hugepages required but unavailable"), std::string::npos) << err;
  EXPECT_TRUE(dma_hugepage_backed());  // never fell back to ordinary memory
  for (void* p : held) dma_free(p);
  // What was freed is usable again.
  void* again = dma_alloc(2 * kMiB);
  EXPECT_NE(again, nullptr);
  dma_free(again);
}

// No reservation here: required hugepages with none reserved must fail at init.
class DmaNoHugepages : public testing::DmaTest {
 protected:
  DmaNoHugepages() : DmaTest(/*exclusive=*/true) {}
};

TEST_F(DmaNoHugepages, RequiredModeFailsAtInit) {
  if (testing::read_number(testing::kNrHugepages).value_or(0) > 0) {
    GTEST_SKIP() << "hugepages are reserved on this machine";
  }
  Status st = dma_init({.hugepages = HugepageMode::required});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("hugepages required but unavailable"), std::string::npos) << st.to_string();
  EXPECT_EQ(dma_stats().mapped_bytes, 0u);
  // Not initialized: a later dma_init may choose again.
  EXPECT_TRUE(dma_init({.hugepages = HugepageMode::off}).ok());
}

}  // namespace
}  // namespace sluice::env
