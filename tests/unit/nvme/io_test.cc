// The I/O path: PRPs (offsets, lists, chained lists, segmented buffers), bounce buffers,
// queue wrap-around and back-pressure, batched doorbells, error completions, write zeroes,
// deallocate and flush.
#include <vector>

#include <gmock/gmock.h>

#include "nvme_test_support.h"

namespace sluice::nvme::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(ModelTest, WriteThenReadBackAtManySizes) {
  start();
  auto q = queue();
  const uint32_t sizes[] = {1, 7, 8, 9, 16, 17, 128, 512};  // blocks of 512 B: up to 256 KiB (MDTS)
  uint64_t lba = 0;
  for (uint32_t nlb : sizes) {
    const size_t bytes = size_t{nlb} * 512;
    env::DmaBuffer out(bytes), in(bytes);
    fill_pattern(out.data(), bytes, nlb);
    ASSERT_TRUE(write(*q, out.data(), lba, nlb).ok()) << nlb;
    ASSERT_TRUE(read(*q, in.data(), lba, nlb).ok()) << nlb;
    EXPECT_EQ(std::memcmp(out.data(), in.data(), bytes), 0) << nlb;
    EXPECT_EQ(std::memcmp(model_->ns_data(1) + lba * 512, out.data(), bytes), 0) << nlb;
    lba += nlb;
  }
  EXPECT_EQ(q->stats().bounces, 0u);  // DMA memory goes straight to the device
  EXPECT_GT(model_->counters().prp_list_pages, 0u);
}

TEST_F(ModelTest, BufferWithAnOffsetCrossesPageBoundaries) {
  start();
  auto q = queue();
  env::DmaBuffer out(4 * 4096), in(4 * 4096);
  // 9 KiB starting 512 bytes into a page: PRP1 with an offset, then a 3-entry PRP list.
  auto* src = static_cast<uint8_t*>(out.data()) + 512;
  auto* dst = static_cast<uint8_t*>(in.data()) + 1024;
  fill_pattern(src, 9216, 7);
  ASSERT_TRUE(write(*q, src, 100, 18).ok());
  ASSERT_TRUE(read(*q, dst, 100, 18).ok());
  EXPECT_EQ(std::memcmp(src, dst, 9216), 0);
  // Two pages exactly from an offset: PRP1 + PRP2, no list.
  ASSERT_TRUE(read(*q, dst, 100, 8).ok());
  EXPECT_EQ(std::memcmp(src, dst, 4096), 0);
  EXPECT_EQ(q->stats().bounces, 0u);
}

TEST_F(ModelTest, SegmentedBuffersMeetingPrpRulesGoDirect) {
  start();
  auto q = queue();
  env::DmaBuffer a(4096), b(8192), c(4096);
  fill_pattern(a.data(), 4096, 1);
  fill_pattern(b.data(), 8192, 2);
  fill_pattern(c.data(), 512, 3);
  iovec iov[] = {{a.data(), 4096}, {b.data(), 8192}, {c.data(), 512}};
  Waiter w;
  ASSERT_EQ(q->write(1, iov, 3, 40, 25, Waiter::cb, &w), Errc::ok);
  ASSERT_TRUE(poll_until(*q, [&] { return w.done; }));
  ASSERT_TRUE(w.c.ok());
  EXPECT_EQ(q->stats().bounces, 0u);
  const uint8_t* media = model_->ns_data(1) + 40 * 512;
  EXPECT_EQ(std::memcmp(media, a.data(), 4096), 0);
  EXPECT_EQ(std::memcmp(media + 4096, b.data(), 8192), 0);
  EXPECT_EQ(std::memcmp(media + 12288, c.data(), 512), 0);
}

TEST_F(ModelTest, BuffersBreakingPrpRulesOrOutsideDmaMemoryAreBounced) {
  start();
  auto q = queue();
  // A segment ending mid-page followed by another: PRPs cannot describe it.
  env::DmaBuffer a(4096), b(4096), back(8192);
  fill_pattern(a.data(), 512, 4);
  fill_pattern(b.data(), 4096, 5);
  iovec iov[] = {{a.data(), 512}, {b.data(), 4096}};
  Waiter w;
  ASSERT_EQ(q->write(1, iov, 2, 0, 9, Waiter::cb, &w), Errc::ok);
  ASSERT_TRUE(poll_until(*q, [&] { return w.done; }));
  ASSERT_TRUE(w.c.ok());
  EXPECT_EQ(q->stats().bounces, 1u);
  // Heap memory the device cannot reach, read back through a bounce buffer.
  std::vector<uint8_t> heap(4608);
  ASSERT_TRUE(read(*q, heap.data(), 0, 9).ok());
  EXPECT_EQ(q->stats().bounces, 2u);
  EXPECT_EQ(std::memcmp(heap.data(), a.data(), 512), 0);
  EXPECT_EQ(std::memcmp(heap.data() + 512, b.data(), 4096), 0);
}

TEST_F(ModelTest, LargeTransfersChainPrpListPages) {
  ModelOptions mo;
  mo.mdts = 0;  // unlimited
  ControllerOptions co;
  co.max_transfer_bytes = 4 << 20;
  start(mo, co);
  ASSERT_EQ(ctrl_->info().max_transfer_bytes, 4u << 20);
  auto q = queue(8);
  const size_t bytes = 4 << 20;
  env::DmaBuffer out(bytes + 4096), in(bytes);
  fill_pattern(out.data(), bytes + 4096, 9);
  // Page-aligned: 1024 pages, PRP1 + 1023 list entries = 511 + a chain, then 512.
  uint64_t before = model_->counters().prp_list_pages;
  ASSERT_TRUE(write(*q, out.data(), 1000, 8192).ok());
  EXPECT_EQ(model_->counters().prp_list_pages - before, 2u);
  ASSERT_TRUE(read(*q, in.data(), 1000, 8192).ok());
  EXPECT_EQ(std::memcmp(out.data(), in.data(), bytes), 0);
  // 512 bytes into a page: 1025 pages, 1024 list entries over three list pages.
  auto* src = static_cast<uint8_t*>(out.data()) + 512;
  before = model_->counters().prp_list_pages;
  ASSERT_TRUE(write(*q, src, 1000, 8192).ok());
  EXPECT_EQ(model_->counters().prp_list_pages - before, 3u);
  ASSERT_TRUE(read(*q, in.data(), 1000, 8192).ok());
  EXPECT_EQ(std::memcmp(src, in.data(), bytes), 0);
  EXPECT_EQ(q->stats().bounces, 0u);
}

TEST_F(ModelTest, RequestsBeyondTheTransferLimitAreRefused) {
  start();
  auto q = queue();
  env::DmaBuffer buf(512 << 10);
  iovec v = {buf.data(), 512 << 10};
  EXPECT_EQ(q->write(1, &v, 1, 0, 1024, Waiter::cb, nullptr), Errc::invalid_argument);  // 512 KiB > MDTS
  v.iov_len = 4096;
  EXPECT_EQ(q->write(1, &v, 1, 0, 9, Waiter::cb, nullptr), Errc::invalid_argument);  // length mismatch
  EXPECT_EQ(q->write(7, &v, 1, 0, 8, Waiter::cb, nullptr), Errc::invalid_argument);  // unknown namespace
  EXPECT_EQ(q->outstanding(), 0u);
}

TEST_F(ModelTest, QueueWrapsAroundManyTimes) {
  start();
  auto q = queue(8);  // 7 commands at once
  env::DmaBuffer buf(7 * 4096);
  uint64_t completed = 0;
  auto cb = [](void* arg, const Completion& c) {
    EXPECT_TRUE(c.ok()) << status_text(c.status);
    ++*static_cast<uint64_t*>(arg);
  };
  for (int round = 0; round < 20; ++round) {
    for (uint32_t i = 0; i < 7; ++i) {
      auto* p = static_cast<uint8_t*>(buf.data()) + i * 4096;
      std::memset(p, round * 7 + static_cast<int>(i), 4096);
      iovec v = {p, 4096};
      ASSERT_EQ(q->write(1, &v, 1, (round * 7 + i) * 8, 8, cb, &completed), Errc::ok);
    }
    iovec v = {buf.data(), 4096};
    EXPECT_EQ(q->write(1, &v, 1, 0, 8, cb, &completed), Errc::busy);  // full: back-pressure
    ASSERT_TRUE(poll_until(*q, [&] { return q->outstanding() == 0; }));
  }
  EXPECT_EQ(completed, 140u);
  for (uint32_t n = 0; n < 140; ++n) EXPECT_EQ(model_->ns_data(1)[n * 8 * 512 + 100], static_cast<uint8_t>(n)) << n;
}

TEST_F(ModelTest, OneDoorbellPerBatch) {
  start();
  auto q = queue();
  env::DmaBuffer buf(4096);
  int done = 0;
  auto cb = [](void* arg, const Completion&) { ++*static_cast<int*>(arg); };
  for (int i = 0; i < 16; ++i) {
    iovec v = {buf.data(), 4096};
    ASSERT_EQ(q->read(1, &v, 1, i * 8, 8, cb, &done), Errc::ok);
  }
  EXPECT_EQ(q->stats().doorbells, 0u);  // nothing rings before poll
  const uint64_t before = model_->counters().doorbell_writes;
  ASSERT_TRUE(poll_until(*q, [&] { return done == 16; }));
  EXPECT_EQ(q->stats().doorbells, 1u);
  EXPECT_EQ(model_->counters().doorbell_writes - before, 2u);  // one SQ tail, one CQ head
}

TEST_F(ModelTest, ProcessingOnPollInsteadOfOnDoorbell) {
  ModelOptions mo;
  mo.process_on_doorbell = false;
  start(mo);
  auto q = queue();
  env::DmaBuffer buf(4096);
  Waiter w;
  iovec v = {buf.data(), 4096};
  ASSERT_EQ(q->read(1, &v, 1, 0, 8, Waiter::cb, &w), Errc::ok);
  for (int i = 0; i < 100; ++i) q->poll();
  EXPECT_FALSE(w.done);  // rung, but the controller has not looked yet
  model_->process();
  ASSERT_TRUE(poll_until(*q, [&] { return w.done; }));
  EXPECT_TRUE(w.c.ok());
}

TEST_F(ModelTest, ErrorCompletionsAreDecoded) {
  start();
  auto q = queue();
  env::DmaBuffer buf(4096);
  // A real check of the model: one block past the end.
  Completion c = read(*q, buf.data(), (16u << 20) / 512, 1);
  EXPECT_EQ(c.errc(), Errc::out_of_range);
  EXPECT_EQ(completion_status(c, "read").message(), "read: LBA out of range (SCT 0 SC 0x80)");
  // Injected media error on writes only.
  model_->inject({Injection::kAnyQueue, spec::kIoWrite, 1, spec::make_status(spec::kSctMedia, spec::kScWriteFault, true)});
  c = write(*q, buf.data(), 0, 8);
  EXPECT_EQ(c.errc(), Errc::io_error);
  EXPECT_EQ(status_text(c.status), "write fault (SCT 2 SC 0x80), do not retry");
  EXPECT_TRUE(write(*q, buf.data(), 0, 8).ok());  // the injection was used up
  EXPECT_EQ(q->stats().errors, 2u);
}

TEST_F(ModelTest, WriteZeroesDeallocateAndFlush) {
  start();
  auto q = queue();
  env::DmaBuffer buf(64 * 512);
  fill_pattern(buf.data(), 64 * 512, 3);
  ASSERT_TRUE(write(*q, buf.data(), 0, 64).ok());
  Completion c = run(*q, [&](Waiter* w) { return q->write_zeroes(1, 8, 8, Waiter::cb, w); });
  ASSERT_TRUE(c.ok());
  spec::DsmRange ranges[] = {{0, 4, 20}, {0, 2, 40}};
  c = run(*q, [&](Waiter* w) { return q->deallocate(1, ranges, 2, Waiter::cb, w); });
  ASSERT_TRUE(c.ok());
  c = run(*q, [&](Waiter* w) { return q->flush(1, Waiter::cb, w); });
  ASSERT_TRUE(c.ok());
  const uint8_t* media = model_->ns_data(1);
  const auto* orig = static_cast<const uint8_t*>(buf.data());
  EXPECT_EQ(std::memcmp(media, orig, 8 * 512), 0);
  EXPECT_TRUE(all_zero(media + 8 * 512, 8 * 512));
  EXPECT_EQ(std::memcmp(media + 16 * 512, orig + 16 * 512, 4 * 512), 0);
  EXPECT_TRUE(all_zero(media + 20 * 512, 4 * 512));
  EXPECT_EQ(std::memcmp(media + 24 * 512, orig + 24 * 512, 16 * 512), 0);
  EXPECT_TRUE(all_zero(media + 40 * 512, 2 * 512));
  EXPECT_EQ(std::memcmp(media + 42 * 512, orig + 42 * 512, 22 * 512), 0);
  EXPECT_EQ(model_->counters().flushes, 1u);
  EXPECT_EQ(model_->counters().deallocates, 1u);
  spec::DsmRange beyond = {0, 8, (16u << 20) / 512 - 4};
  c = run(*q, [&](Waiter* w) { return q->deallocate(1, &beyond, 1, Waiter::cb, w); });
  EXPECT_EQ(c.errc(), Errc::out_of_range);
}

TEST_F(ModelTest, SeveralNamespacesKeepTheirOwnData) {
  ModelOptions mo;
  mo.namespaces = {{1, 512, 2048}, {2, 4096, 256}};
  start(mo);
  auto q = queue();
  env::DmaBuffer a(4096), b(4096);
  fill_pattern(a.data(), 4096, 1);
  fill_pattern(b.data(), 4096, 2);
  iovec va = {a.data(), 4096}, vb = {b.data(), 4096};
  ASSERT_TRUE(run(*q, [&](Waiter* w) { return q->write(1, &va, 1, 0, 8, Waiter::cb, w); }).ok());
  ASSERT_TRUE(run(*q, [&](Waiter* w) { return q->write(2, &vb, 1, 0, 1, Waiter::cb, w); }).ok());
  EXPECT_EQ(std::memcmp(model_->ns_data(1), a.data(), 4096), 0);
  EXPECT_EQ(std::memcmp(model_->ns_data(2), b.data(), 4096), 0);
  EXPECT_EQ(q->write(2, &vb, 1, 0, 8, Waiter::cb, nullptr), Errc::invalid_argument);  // 8 x 4 KiB != 4 KiB
}

}  // namespace
}  // namespace sluice::nvme::testing
