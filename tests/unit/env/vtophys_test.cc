// Address translation in both IOVA modes.
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "dma_test_util.h"
#include "base/size.h"
#include "env/env.h"

namespace sluice::env {
namespace {

using Vtophys = testing::DmaTest;
using VtophysHugepages = testing::HugepageTest;

TEST_F(Vtophys, VaModeIsIdentity) {
  EXPECT_EQ(dma_iova_mode(), IovaMode::va);
  std::vector<void*> held;
  for (size_t size : {size_t{4096}, 3 * size_t{4096}, 2 * kMiB, 7 * kMiB}) {
    auto* p = static_cast<char*>(dma_alloc(size));
    ASSERT_NE(p, nullptr);
    held.push_back(p);
    EXPECT_EQ(dma_translate(p), reinterpret_cast<uint64_t>(p));
    EXPECT_EQ(dma_translate(p + size - 1), reinterpret_cast<uint64_t>(p + size - 1));
    auto r = dma_translate_checked(p, size);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(*r, reinterpret_cast<uint64_t>(p));
  }
  for (void* p : held) dma_free(p);
}

TEST_F(Vtophys, RejectsWhatIsNotDmaMemory) {
  int on_stack = 0;
  EXPECT_EQ(dma_translate(&on_stack), kDmaBadIova);
  EXPECT_EQ(dma_translate(nullptr), kDmaBadIova);
  EXPECT_EQ(dma_translate_checked(&on_stack, 4).status().code(), Errc::invalid_argument);
  void* p = dma_alloc(4096);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(dma_translate_checked(p, 0).status().code(), Errc::invalid_argument);
  // Past the end of the region the buffer lives in.
  iovec region{};
  for (const iovec& r : dma_regions()) {
    if (p >= r.iov_base && p < static_cast<char*>(r.iov_base) + r.iov_len) region = r;
  }
  ASSERT_NE(region.iov_base, nullptr);
  auto* end = static_cast<char*>(region.iov_base) + region.iov_len;
  EXPECT_EQ(dma_translate_checked(end - 10, 11).status().code(), Errc::out_of_range);
  EXPECT_EQ(dma_translate_checked(p, ~size_t{0}).status().code(), Errc::out_of_range);
  dma_free(p);
}

TEST_F(Vtophys, PaModeOnOrdinaryMemoryTranslatesPerPage) {
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::off}).ok());
  auto* p = static_cast<char*>(dma_alloc(64 * 1024));
  ASSERT_NE(p, nullptr);
  Status st = dma_set_iova_mode(IovaMode::pa);
  if (!st.ok()) {
    dma_free(p);
    EXPECT_EQ(st.code(), Errc::permission) << st.to_string();
    GTEST_SKIP() << "physical addresses unreadable: " << st.to_string();
  }
  EXPECT_EQ(dma_iova_mode(), IovaMode::pa);
  for (size_t off = 100; off < 64 * 1024; off += 4096) {
    uint64_t expect = testing::pagemap_pa(p + off);
    ASSERT_NE(expect, 0u);
    EXPECT_EQ(dma_translate(p + off), expect) << off;
  }
  auto one_page = dma_translate_checked(p + 4096, 4096);
  ASSERT_TRUE(one_page.ok()) << one_page.status().to_string();
  EXPECT_EQ(*one_page, testing::pagemap_pa(p + 4096));
  // Across pages it succeeds only where the pages happen to be physically adjacent.
  auto span = dma_translate_checked(p, 64 * 1024);
  bool adjacent = true;
  for (size_t off = 4096; off < 64 * 1024; off += 4096) {
    adjacent = adjacent && testing::pagemap_pa(p + off) == testing::pagemap_pa(p) + off;
  }
  EXPECT_EQ(span.ok(), adjacent) << span.status().to_string();
  dma_free(p);
}

TEST_F(VtophysHugepages, PaModeOnHugepagesIsContiguousWithinAPage) {
  ASSERT_TRUE(dma_init({.hugepages = HugepageMode::required}).ok());
  Status st = dma_set_iova_mode(IovaMode::pa);
  if (!st.ok()) GTEST_SKIP() << "physical addresses unreadable: " << st.to_string();
  auto* p = static_cast<char*>(dma_alloc(2 * kMiB, 2 * kMiB));
  ASSERT_NE(p, nullptr);
  uint64_t a = dma_translate(p + 100);
  uint64_t b = dma_translate(p + 2 * kMiB - 1);
  ASSERT_NE(a, kDmaBadIova);
  ASSERT_NE(b, kDmaBadIova);
  EXPECT_EQ(b - a, 2 * kMiB - 1 - 100);
  EXPECT_EQ(a, testing::pagemap_pa(p + 100));
  EXPECT_EQ(b, testing::pagemap_pa(p + 2 * kMiB - 1));
  EXPECT_EQ(a % 4096, 100u);
  EXPECT_EQ(dma_translate(p + 100), a);  // cached now, same answer
  auto whole = dma_translate_checked(p, 2 * kMiB);
  ASSERT_TRUE(whole.ok()) << whole.status().to_string();
  EXPECT_EQ(*whole, a - 100);

  // A buffer over several hugepages is contiguous only if the kernel happened to place them
  // so; the check must agree with the page map either way.
  auto* big = static_cast<char*>(dma_alloc(6 * kMiB));
  ASSERT_NE(big, nullptr);
  bool adjacent = testing::pagemap_pa(big + 2 * kMiB) == testing::pagemap_pa(big) + 2 * kMiB &&
                  testing::pagemap_pa(big + 4 * kMiB) == testing::pagemap_pa(big) + 4 * kMiB;
  auto span = dma_translate_checked(big, 6 * kMiB);
  EXPECT_EQ(span.ok(), adjacent) << span.status().to_string();
  if (!span.ok()) {
    EXPECT_NE(span.status().message().find("not physically contiguous"), std::string::npos);
  }
  for (size_t off : {size_t{0}, 2 * kMiB + 4096, 6 * kMiB - 1}) {
    EXPECT_EQ(dma_translate(big + off), testing::pagemap_pa(big + off)) << off;
  }
  dma_free(big);
  dma_free(p);
}

}  // namespace
}  // namespace sluice::env
