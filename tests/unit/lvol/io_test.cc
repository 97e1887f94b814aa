// Data I/O through lvol bdevs: the bdev conformance checks that matter for a volume (read
// after write across clusters, rejection of bad requests, flush, write_zeroes, unmap,
// back-pressure), thin allocation made durable by flush, snapshots and clones seen through
// their bdevs, and aliases. Skipped while the blob data path is not built.
#include <atomic>
#include <cstring>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev/channel.h"
#include "lvol/lvol.h"
#include "lvol_test_util.h"

#include "aligned_buffer.h"
#include "bdev_handle.h"

namespace sluice::lvol {
namespace {

using sluice::testing::AlignedBuffer;
using testing::kCluster;
using testing::LvolTest;

constexpr uint32_t kBs = 512;

// An open volume with this thread's channel.
struct OpenVolume {
  std::unique_ptr<bdev::BdevDesc> desc;
  bdev::BdevChannel* ch = nullptr;
  Status status;

  explicit OpenVolume(const std::string& name, bool write = true) {
    bdev::OpenOptions o;
    o.write = write;
    auto d = bdev::open(name, o);
    if (!d.ok()) {
      status = d.status();
      return;
    }
    desc = std::move(d.value());
    auto c = desc->get_channel();
    if (!c.ok()) {
      status = c.status();
      return;
    }
    ch = *c;
  }
  ~OpenVolume() { close(); }
  void close() {
    if (ch) (void)desc->put_channel(ch);
    ch = nullptr;
    desc.reset();
  }
  bdev::SyncIo io() { return bdev::SyncIo{*desc, ch}; }
};

class LvolIoTest : public LvolTest {};

// Opens bdev NAME (read-write unless a second argument says false) as `var`, or fails the test.
#define OPEN_VOLUME(var, ...)                                              \
  auto var = std::make_unique<OpenVolume>(__VA_ARGS__);                    \
  ASSERT_TRUE(var->status.ok()) << var->status.to_string();               \
  ASSERT_TRUE(var->ch)

TEST_F(LvolIoTest, ReadAfterWriteAcrossClusters) {
  make_store();
  must_create("v", 8 * kCluster);
  OPEN_VOLUME(v, "pool/v");
  auto io = v->io();
  // A run that starts mid-cluster and spans three clusters, and a single block at the end.
  const uint64_t first = kCluster / kBs - 3, n = 2 * kCluster / kBs + 7;
  AlignedBuffer out(n * kBs), in(n * kBs);
  out.fill_pattern(1);
  ASSERT_OK(io.write(out.data(), first, n));
  ASSERT_OK(io.read(in.data(), first, n));
  EXPECT_TRUE(in == out);
  const uint64_t last = 8 * kCluster / kBs - 1;
  AlignedBuffer one(kBs), back(kBs);
  one.fill_pattern(2);
  ASSERT_OK(io.write(one.data(), last, 1));
  ASSERT_OK(io.read(back.data(), last, 1));
  EXPECT_TRUE(one == back);
  // Vectored, with uneven segments.
  AlignedBuffer a(3 * kBs), b(5 * kBs), ra(3 * kBs), rb(5 * kBs);
  a.fill_pattern(3);
  b.fill_pattern(4);
  iovec w[2] = {{a.data(), 3 * kBs}, {b.data(), 5 * kBs}};
  iovec r[2] = {{ra.data(), 3 * kBs}, {rb.data(), 5 * kBs}};
  ASSERT_OK(io.writev(w, 2, 100, 8));
  ASSERT_OK(io.readv(r, 2, 100, 8));
  EXPECT_TRUE(a == ra);
  EXPECT_TRUE(b == rb);
  ASSERT_OK(io.flush());
}

TEST_F(LvolIoTest, BadRequestsAreRejected) {
  make_store();
  must_create("v", 2 * kCluster);
  OPEN_VOLUME(v, "pool/v");
  const uint64_t blocks = 2 * kCluster / kBs;
  AlignedBuffer buf(8 * kBs);
  auto& d = *v->desc;
  EXPECT_EQ(d.read(v->ch, buf.data(), blocks, 1, nullptr, nullptr).code(), Errc::out_of_range);
  EXPECT_EQ(d.read(v->ch, buf.data(), blocks - 1, 2, nullptr, nullptr).code(), Errc::out_of_range);
  EXPECT_EQ(d.write(v->ch, buf.data(), ~uint64_t{0}, 2, nullptr, nullptr).code(), Errc::out_of_range);
  EXPECT_EQ(d.read(v->ch, buf.data(), 0, 0, nullptr, nullptr).code(), Errc::invalid_argument);
  EXPECT_EQ(d.unmap(v->ch, blocks - 1, 4, nullptr, nullptr).code(), Errc::out_of_range);
  EXPECT_EQ(v->ch->in_flight(), 0u);
  // A read-only handle refuses writes.
  OpenVolume ro("pool/v", false);
  ASSERT_TRUE(ro.status.ok());
  EXPECT_EQ(ro.desc->write(ro.ch, buf.data(), 0, 1, nullptr, nullptr).code(), Errc::permission);
}

TEST_F(LvolIoTest, WriteZeroesAndUnmapZeroOnlyTheirRange) {
  make_store();
  must_create("v", 4 * kCluster, true);
  OPEN_VOLUME(v, "pool/v");
  auto io = v->io();
  const uint64_t n = 4 * kCluster / kBs;
  AlignedBuffer out(n * kBs), in(n * kBs);
  out.fill_pattern(5);
  ASSERT_OK(io.write(out.data(), 0, n));
  ASSERT_OK(io.write_zeroes(10, 20));
  ASSERT_OK(io.unmap(kCluster / kBs, kCluster / kBs));  // one whole cluster
  ASSERT_OK(io.read(in.data(), 0, n));
  std::memset(out.data() + 10 * kBs, 0, 20 * kBs);
  std::memset(out.data() + kCluster, 0, kCluster);
  EXPECT_TRUE(in == out);
  ASSERT_OK(io.reset());
}

TEST_F(LvolIoTest, ThinWritesAllocateAndFlushMakesThemSurviveACrash) {
  make_store();
  must_create("t", 16 * kCluster, true);
  AlignedBuffer out(kCluster), in(kCluster);
  out.fill_pattern(6);
  {
    OPEN_VOLUME(v, "pool/t");
    auto io = v->io();
    ASSERT_OK(io.write(out.data(), 5 * kCluster / kBs, kCluster / kBs));
    ASSERT_OK(io.write(out.data(), 9 * kCluster / kBs + 1, 1));
    ASSERT_OK(io.flush());
  }
  EXPECT_EQ(store_->volume("t")->allocated_bytes, 2u * kCluster);
  reload(/*clean=*/false);
  EXPECT_EQ(store_->volume("t")->allocated_bytes, 2u * kCluster);
  OPEN_VOLUME(v, "pool/t");
  auto io = v->io();
  ASSERT_OK(io.read(in.data(), 5 * kCluster / kBs, kCluster / kBs));
  EXPECT_TRUE(in == out);
  ASSERT_OK(io.read(in.data(), 0, kCluster / kBs));
  EXPECT_TRUE(in.is_zero(0, kCluster));
}

TEST_F(LvolIoTest, SnapshotsFreezeContentAndClonesCopyOnWrite) {
  make_store();
  must_create("v", 2 * kCluster);
  const uint64_t n = 2 * kCluster / kBs;
  AlignedBuffer first(n * kBs), second(n * kBs), in(n * kBs);
  first.fill_pattern(7);
  second.fill_pattern(8);
  {
    OPEN_VOLUME(v, "pool/v");
    ASSERT_OK(v->io().write(first.data(), 0, n));
    // Snapshot while open: the volume keeps working and now writes copy on write.
    ASSERT_TRUE(store_->snapshot_volume("v", "s").ok());
    ASSERT_OK(v->io().write(second.data(), 0, 1));
    ASSERT_OK(v->io().read(in.data(), 0, n));
    EXPECT_EQ(std::memcmp(in.data(), second.data(), kBs), 0);
    EXPECT_EQ(std::memcmp(in.data() + kBs, first.data() + kBs, (n - 1) * kBs), 0);
  }
  ASSERT_TRUE(store_->clone_volume("s", "c").ok());
  OPEN_VOLUME(s, "pool/s");
  ASSERT_OK(s->io().read(in.data(), 0, n));
  EXPECT_TRUE(in == first);
  AlignedBuffer buf(kBs);
  EXPECT_NE(s->desc->write(s->ch, buf.data(), 0, 1, nullptr, nullptr).code(), Errc::ok);
  OPEN_VOLUME(c, "pool/c");
  ASSERT_OK(c->io().read(in.data(), 0, n));
  EXPECT_TRUE(in == first);
  ASSERT_OK(c->io().write(second.data(), n - 1, 1));
  ASSERT_OK(c->io().flush());
  ASSERT_OK(s->io().read(in.data(), 0, n));
  EXPECT_TRUE(in == first);  // the snapshot is untouched
  // An open volume cannot be deleted.
  EXPECT_EQ(store_->delete_volume("c").code(), Errc::busy);
  c->close();
  s->close();
  ASSERT_OK(store_->inflate_volume("c"));
  OPEN_VOLUME(c2, "pool/c");
  ASSERT_OK(c2->io().read(in.data(), 0, n));
  EXPECT_EQ(std::memcmp(in.data(), first.data(), (n - 1) * kBs), 0);
  EXPECT_EQ(std::memcmp(in.data() + (n - 1) * kBs, second.data(), kBs), 0);
}

// Block status: a thin volume's unallocated clusters are holes; a clone's clusters read
// from its snapshot are data; ranges are checked.
TEST_F(LvolIoTest, BlockStatusReportsHolesOfThinVolumesAndClones) {
  make_store();
  must_create("t", 8 * kCluster, true);
  const uint64_t per = kCluster / kBs;
  using Runs = std::vector<std::pair<uint64_t, bool>>;
  auto runs = [](const Result<std::vector<bdev::BlockRun>>& r) {
    Runs out;
    if (r.ok())
      for (const auto& run : r.value()) out.emplace_back(run.blocks, run.hole);
    return out;
  };
  AlignedBuffer buf(kBs);
  buf.fill_pattern(3);
  {
    OPEN_VOLUME(v, "pool/t");
    EXPECT_EQ(runs(v->desc->block_status(v->ch, 0, 8 * per, 100)), (Runs{{8 * per, true}}));
    ASSERT_OK(v->io().write(buf.data(), 2 * per + 5, 1));
    ASSERT_OK(v->io().write(buf.data(), 3 * per, 1));
    ASSERT_OK(v->io().write(buf.data(), 6 * per, 1));
    EXPECT_EQ(runs(v->desc->block_status(v->ch, 0, 8 * per, 100)),
              (Runs{{2 * per, true}, {2 * per, false}, {2 * per, true}, {per, false}, {per, true}}));
    // A range starting and ending inside clusters; at most max_runs runs, in order.
    EXPECT_EQ(runs(v->desc->block_status(v->ch, per + 1, 2 * per, 100)), (Runs{{per - 1, true}, {per + 1, false}}));
    EXPECT_EQ(runs(v->desc->block_status(v->ch, 0, 8 * per, 2)), (Runs{{2 * per, true}, {2 * per, false}}));
    // Out of range, empty, or no room for a run: refused.
    EXPECT_EQ(v->desc->block_status(v->ch, 8 * per, 1, 1).status().code(), Errc::out_of_range);
    EXPECT_EQ(v->desc->block_status(v->ch, 0, 8 * per + 1, 1).status().code(), Errc::out_of_range);
    EXPECT_EQ(v->desc->block_status(v->ch, 0, 0, 1).status().code(), Errc::out_of_range);
    EXPECT_EQ(v->desc->block_status(v->ch, 0, 1, 0).status().code(), Errc::out_of_range);
    // An unmap zeroes on the data path; it does not give the cluster back (blobstore.cc), so
    // the cluster stays data.
    ASSERT_OK(v->io().unmap(6 * per, per));
    EXPECT_EQ(runs(v->desc->block_status(v->ch, 4 * per, 4 * per, 100)),
              (Runs{{2 * per, true}, {per, false}, {per, true}}));
  }
  ASSERT_TRUE(store_->snapshot_volume("t", "s").ok());
  ASSERT_TRUE(store_->clone_volume("s", "c").ok());
  OPEN_VOLUME(c, "pool/c");
  // The clone owns nothing, but what it reads from the snapshot is data.
  EXPECT_EQ(runs(c->desc->block_status(c->ch, 0, 8 * per, 100)),
            (Runs{{2 * per, true}, {2 * per, false}, {2 * per, true}, {per, false}, {per, true}}));
  // Its own cluster, merged with the snapshot's one before it.
  ASSERT_OK(c->io().write(buf.data(), 7 * per, 1));
  EXPECT_EQ(runs(c->desc->block_status(c->ch, 4 * per, 4 * per, 100)), (Runs{{2 * per, true}, {2 * per, false}}));
}

TEST_F(LvolIoTest, DataSurvivesACleanReload) {
  make_store();
  must_create("v", 4 * kCluster);
  const uint64_t n = 4 * kCluster / kBs;
  AlignedBuffer out(n * kBs), in(n * kBs);
  out.fill_pattern(9);
  {
    OPEN_VOLUME(v, "pool/v");
    ASSERT_OK(v->io().write(out.data(), 0, n));
  }
  reload(true);
  OPEN_VOLUME(v, "pool/v");
  ASSERT_OK(v->io().read(in.data(), 0, n));
  EXPECT_TRUE(in == out);
}

TEST_F(LvolIoTest, DeepQueuesAreBackPressureNotFailure) {
  make_store();
  must_create("v", 8 * kCluster);
  OPEN_VOLUME(v, "pool/v");
  // More requests at once than a blob channel holds: the volume queues the rest itself.
  const uint32_t qd = v->desc->geometry().queue_depth;
  const uint32_t want = std::min<uint32_t>(qd, 600);
  AlignedBuffer buf(want * kBs);
  buf.fill_pattern(10);
  uint32_t done = 0, failed = 0;
  struct Ctx {
    uint32_t* done;
    uint32_t* failed;
  } ctx{&done, &failed};
  auto cb = [](void* arg, Errc st) {
    auto* c = static_cast<Ctx*>(arg);
    ++*c->done;
    if (st != Errc::ok) ++*c->failed;
  };
  uint32_t submitted = 0;
  for (uint32_t i = 0; i < want; ++i) {
    Status st = v->desc->write(v->ch, buf.data() + i * kBs, i, 1, cb, &ctx);
    if (st.code() == Errc::busy) break;
    ASSERT_OK(st);
    ++submitted;
  }
  EXPECT_EQ(submitted, want);
  ASSERT_TRUE(sluice::testing::poll_until(v->ch, [&] { return done == submitted; }));
  EXPECT_EQ(failed, 0u);
  AlignedBuffer in(want * kBs);
  ASSERT_OK(v->io().read(in.data(), 0, want));
  EXPECT_TRUE(in == buf);
}

TEST_F(LvolIoTest, ChannelsOnManyThreadsAllocateAndSurviveACrash) {
  make_store();
  must_create("t", 64 * kCluster, true);
  {
    OPEN_VOLUME(probe, "pool/t");  // one thread can open it before many do
  }
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 4;  // clusters each thread writes (first writes: allocation)
  auto desc = bdev::open("pool/t");
  ASSERT_TRUE(desc.ok());
  std::atomic<int> failures{0};
  std::latch all_hold_channels(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto ch = (*desc)->get_channel();
      all_hold_channels.count_down();
      if (!ch.ok()) {
        ++failures;
        return;
      }
      all_hold_channels.wait();
      bdev::SyncIo io{**desc, *ch};
      AlignedBuffer out(kCluster);
      for (uint64_t i = 0; i < kPerThread; ++i) {
        out.fill_pattern(100 + t * kPerThread + i);
        // Interleaved: thread t writes clusters t, t + kThreads, ...
        if (!io.write(out.data(), (t + i * kThreads) * kCluster / kBs, kCluster / kBs).ok()) ++failures;
      }
      if (!io.flush().ok()) ++failures;
      if (!(*desc)->put_channel(*ch).ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  desc->reset();
  EXPECT_EQ(store_->volume("t")->allocated_bytes, kThreads * kPerThread * kCluster);
  reload(/*clean=*/false);
  OPEN_VOLUME(v, "pool/t");
  AlignedBuffer want(kCluster), got(kCluster);
  for (int t = 0; t < kThreads; ++t) {
    for (uint64_t i = 0; i < kPerThread; ++i) {
      want.fill_pattern(100 + t * kPerThread + i);
      ASSERT_OK(v->io().read(got.data(), (t + i * kThreads) * kCluster / kBs, kCluster / kBs));
      EXPECT_TRUE(got == want) << "thread " << t << " cluster " << i;
    }
  }
}

TEST_F(LvolIoTest, AnAliasSeesTheSameData) {
  make_store();
  must_create("v", 2 * kCluster);
  auto alias = bdev::create("lvol:pool/v", "alias");
  ASSERT_TRUE(alias.ok()) << alias.status().to_string();
  AlignedBuffer out(8 * kBs), in(8 * kBs);
  out.fill_pattern(11);
  {
    OPEN_VOLUME(a, "alias");
    ASSERT_OK(a->io().write(out.data(), 40, 8));
  }
  {
    OPEN_VOLUME(v, "pool/v");
    ASSERT_OK(v->io().read(in.data(), 40, 8));
    EXPECT_TRUE(in == out);
  }
  ASSERT_OK(bdev::unregister("alias"));
}

}  // namespace
}  // namespace sluice::lvol
