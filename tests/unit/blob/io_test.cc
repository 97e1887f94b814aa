// The blob data path: read/write/write_zeroes through thick, thin and cloned blobs, on
// malloc and (when available) a uring file; allocation and copy-on-write under concurrency,
// the freeze gate, crash semantics of first writes, validation and back-pressure.
#include "io_test_support.h"

namespace sluice::blob {
namespace {

using namespace iotest;

// ---- on every backend ------------------------------------------------------------------

class BlobIoBackendTest : public BlobIoTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    if (!make_device(GetParam())) GTEST_SKIP() << skip_reason_;
    init();
  }
};

TEST_P(BlobIoBackendTest, ThickReadAfterWriteAcrossClusters) {
  const BlobId id = create(8, false);
  Blob& b = open(id);
  const uint64_t total = 8 * upc_;
  // Random extents, many crossing cluster boundaries; the last write of each unit wins.
  std::mt19937_64 rng(42);
  std::vector<uint64_t> tags(total, 0);
  for (int i = 0; i < 60; ++i) {
    uint64_t len = 1 + rng() % (3 * upc_);
    uint64_t off = rng() % (total - len + 1);
    uint64_t tag = 1000 + i;
    AlignedBuffer buf(len * io_unit_);
    for (uint64_t u = 0; u < len; ++u) {
      stamp(buf.data() + u * io_unit_, io_unit_, tag, off + u);
      tags[off + u] = tag;
    }
    ASSERT_EQ(write(b, buf.data(), off, len), Errc::ok);
  }
  for (uint64_t u = 0; u < total;) {  // read back in pieces cut differently
    uint64_t len = std::min<uint64_t>(total - u, 1 + rng() % (2 * upc_));
    AlignedBuffer buf(len * io_unit_);
    ASSERT_EQ(read(b, buf.data(), u, len), Errc::ok);
    for (uint64_t k = 0; k < len; ++k) {
      const uint64_t want = tags[u + k];
      if (want == 0) {
        EXPECT_TRUE(buf.is_zero(k * io_unit_, io_unit_)) << "unit " << u + k;
      } else {
        EXPECT_EQ(tag_of(buf.data() + k * io_unit_), want) << "unit " << u + k;
      }
    }
    u += len;
  }
  EXPECT_EQ(allocated(id), 8u);
  Waiter w;
  ASSERT_TRUE(bs_->flush(ch_, &Waiter::cb, &w).ok());
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return w.done; }));
  EXPECT_EQ(w.status, Errc::ok);
  expect_clean_fsck();
}

TEST_P(BlobIoBackendTest, ThinFirstWriteAllocatesOneClusterAndSurvivesSyncedCrash) {
  const BlobId id = create(16, true);
  Blob& b = open(id);
  EXPECT_EQ(allocated(id), 0u);
  expect_stamped(b, 0, 0, 16 * upc_);  // all zeroes, nothing allocated by reading
  EXPECT_EQ(allocated(id), 0u);
  write_stamped(b, 7, 3 * upc_ + 5, 2);  // two units inside cluster 3
  EXPECT_EQ(allocated(id), 1u);
  expect_stamped(b, 0, 3 * upc_, 5);
  expect_stamped(b, 7, 3 * upc_ + 5, 2);
  expect_stamped(b, 0, 3 * upc_ + 7, upc_ - 7);
  expect_stamped(b, 0, 0, 3 * upc_);
  // A second write into the same cluster allocates nothing more.
  write_stamped(b, 8, 3 * upc_ + 100, 1);
  EXPECT_EQ(allocated(id), 1u);
  const uint64_t allocations = blob_channel_stats(ch_).allocations;
  EXPECT_EQ(allocations, 1u);

  Waiter w;
  ASSERT_TRUE(bs_->flush(ch_, &Waiter::cb, &w).ok());
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return w.done; }));
  ASSERT_TRUE(bs_->sync_md().ok());
  crash_and_reload();
  Blob& b2 = open(id);
  EXPECT_EQ(allocated(id), 1u);
  expect_stamped(b2, 7, 3 * upc_ + 5, 2);
  expect_stamped(b2, 8, 3 * upc_ + 100, 1);
  expect_stamped(b2, 0, 0, 3 * upc_ + 5);
  expect_clean_fsck();
}

TEST_P(BlobIoBackendTest, CloneCopiesOnWriteAndLeavesTheSnapshotAlone) {
  const BlobId id = create(4, false);
  Blob& b = open(id);
  write_stamped(b, 1, 0, 4 * upc_);
  auto snap = bs_->snapshot(id);  // the blob is now a clone of `snap`
  ASSERT_TRUE(snap.ok()) << snap.status().to_string();
  EXPECT_EQ(allocated(id), 0u);
  expect_stamped(b, 1, 0, 4 * upc_);  // reads through to the snapshot
  // A partial write to cluster 1 copies it: the clone sees the merge, the snapshot is intact.
  write_stamped(b, 2, upc_ + 10, 3);
  EXPECT_EQ(allocated(id), 1u);
  EXPECT_EQ(blob_channel_stats(ch_).copies, 1u);
  expect_stamped(b, 1, 0, upc_ + 10);
  expect_stamped(b, 2, upc_ + 10, 3);
  expect_stamped(b, 1, upc_ + 13, 3 * upc_ - 13);
  Blob& s = open(*snap);
  expect_stamped(s, 1, 0, 4 * upc_);
  // A writable clone of the snapshot reads it too, and copies on its own.
  auto c = bs_->clone(*snap);
  ASSERT_TRUE(c.ok());
  Blob& cb = open(*c);
  expect_stamped(cb, 1, 0, 4 * upc_);
  write_stamped(cb, 3, 3 * upc_, upc_);
  expect_stamped(cb, 3, 3 * upc_, upc_);
  expect_stamped(b, 1, 3 * upc_, upc_);
  expect_stamped(s, 1, 3 * upc_, upc_);
  expect_clean_fsck();
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobIoBackendTest, ::testing::Values("malloc", "uring"),
                         [](const auto& p) { return p.param; });

TEST_F(BlobIoMallocTest, CallbacksRunOnlyInsidePoll) {
  Blob& b = open(create(2, false));
  AlignedBuffer buf(io_unit_);
  Waiter w;
  ASSERT_TRUE(bs_->write(ch_, b, buf.data(), 0, 1, &Waiter::cb, &w).ok());
  EXPECT_FALSE(w.done);
  EXPECT_EQ(blob_channel_outstanding(ch_), 1u);
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return w.done; }));
  EXPECT_EQ(w.status, Errc::ok);
  EXPECT_EQ(blob_channel_outstanding(ch_), 0u);
  // Zero-filled reads (nothing on the device) complete in poll as well.
  Blob& t = open(create(2, true));
  Waiter r;
  ASSERT_TRUE(bs_->read(ch_, t, buf.data(), 0, 1, &Waiter::cb, &r).ok());
  EXPECT_FALSE(r.done);
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return r.done; }));
  EXPECT_EQ(r.status, Errc::ok);
}

TEST_F(BlobIoMallocTest, VectoredIoAcrossClustersWithManySegments) {
  Blob& b = open(create(4, true));
  // 40 segments of mixed sizes (more than a request carries inline), 3 clusters long,
  // straddling two cluster boundaries; segment edges fall inside units.
  const uint64_t off = upc_ / 2, len = 3 * upc_;
  AlignedBuffer src(len * io_unit_);
  for (uint64_t u = 0; u < len; ++u) stamp(src.data() + u * io_unit_, io_unit_, 77, off + u);
  std::vector<iovec> iov;
  size_t pos = 0;
  for (int i = 0; pos < len * io_unit_; ++i) {
    size_t want = i % 3 == 0 ? 200 : (i % 3 == 1 ? 3 * io_unit_ + 56 : 9000);
    size_t take = std::min(want, len * io_unit_ - pos);
    if (i == 39) take = len * io_unit_ - pos;
    iov.push_back({src.data() + pos, take});
    pos += take;
  }
  ASSERT_GT(iov.size(), 16u);
  ASSERT_EQ(run(*bs_, ch_, [&](bdev::IoCallback cb, void* a) {
              return bs_->writev(ch_, b, iov.data(), static_cast<int>(iov.size()), off, len, cb, a);
            }),
            Errc::ok);
  expect_stamped(b, 77, off, len);
  // Read back scattered into two segments per unit.
  AlignedBuffer dst(len * io_unit_);
  std::vector<iovec> riov;
  for (uint64_t u = 0; u < len; ++u) {
    riov.push_back({dst.data() + u * io_unit_, 100});
    riov.push_back({dst.data() + u * io_unit_ + 100, io_unit_ - 100});
  }
  ASSERT_EQ(run(*bs_, ch_, [&](bdev::IoCallback cb, void* a) {
              return bs_->readv(ch_, b, riov.data(), static_cast<int>(riov.size()), off, len, cb, a);
            }),
            Errc::ok);
  EXPECT_TRUE(dst == src);
  EXPECT_EQ(allocated(b.id()), 4u);
}

TEST_F(BlobIoMallocTest, ThinAllocationWithoutSyncIsGoneAfterACrash) {
  const BlobId id = create(8, true);
  ASSERT_TRUE(bs_->sync_md().ok());
  Blob& b = open(id);
  write_stamped(b, 5, 2 * upc_, upc_);
  write_stamped(b, 5, 6 * upc_ + 1, 1);
  EXPECT_EQ(allocated(id), 2u);
  crash_and_reload();  // no sync_md: the allocations were never durable
  EXPECT_EQ(allocated(id), 0u);
  Blob& b2 = open(id);
  expect_stamped(b2, 0, 0, 8 * upc_);
  expect_clean_fsck();
  // The recovered store hands the (zeroed) clusters out again.
  write_stamped(b2, 6, 2 * upc_ + 3, 1);
  expect_stamped(b2, 0, 2 * upc_, 3);
  expect_stamped(b2, 6, 2 * upc_ + 3, 1);
  expect_stamped(b2, 0, 2 * upc_ + 4, upc_ - 4);
}

TEST_F(BlobIoMallocTest, CopyOnWriteIsDurableAfterSyncAndGoneWithoutIt) {
  const BlobId id = create(2, false);
  Blob& b = open(id);
  write_stamped(b, 1, 0, 2 * upc_);
  auto snap = bs_->snapshot(id);
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(bs_->sync_md().ok());
  write_stamped(b, 2, 1, 1);  // copy of cluster 0
  ASSERT_TRUE(bs_->sync_md().ok());
  write_stamped(b, 3, upc_ + 1, 1);  // copy of cluster 1, never synced
  crash_and_reload();
  Blob& b2 = open(id);
  EXPECT_EQ(allocated(id), 1u);
  expect_stamped(b2, 1, 0, 1);
  expect_stamped(b2, 2, 1, 1);
  expect_stamped(b2, 1, 2, 2 * upc_ - 2);  // cluster 1 reads the snapshot again
  expect_clean_fsck();
}

TEST_F(BlobIoMallocTest, SnapshotKeepsItsDataWhileTheBlobChanges) {
  const BlobId id = create(4, true);
  Blob& b = open(id);
  write_stamped(b, 1, 0, 2 * upc_);  // clusters 2, 3 stay unallocated
  auto s1 = bs_->snapshot(id);
  ASSERT_TRUE(s1.ok());
  write_stamped(b, 2, upc_ - 1, 2);  // straddles clusters 0 and 1: two copies
  write_stamped(b, 2, 3 * upc_, 1);  // a thin cluster with nothing beneath: no copy
  EXPECT_EQ(blob_channel_stats(ch_).copies, 2u);
  auto s2 = bs_->snapshot(id);
  ASSERT_TRUE(s2.ok());
  write_stamped(b, 3, 0, 4 * upc_);
  Blob& a = open(*s1);
  Blob& c = open(*s2);
  expect_stamped(a, 1, 0, 2 * upc_);
  expect_stamped(a, 0, 2 * upc_, 2 * upc_);
  expect_stamped(c, 1, 0, upc_ - 1);
  expect_stamped(c, 2, upc_ - 1, 2);
  expect_stamped(c, 1, upc_ + 1, upc_ - 1);
  expect_stamped(c, 0, 2 * upc_, upc_);
  expect_stamped(c, 2, 3 * upc_, 1);
  expect_stamped(c, 0, 3 * upc_ + 1, upc_ - 1);
  expect_stamped(b, 3, 0, 4 * upc_);
  expect_clean_fsck();
}

TEST_F(BlobIoMallocTest, InflateAndDecouplePreserveContents) {
  // base -> s1 (snapshot) -> s2 (snapshot) -> blob: three layers of different clusters.
  const BlobId id = create(4, true);
  Blob& b = open(id);
  write_stamped(b, 1, 0, upc_);
  write_stamped(b, 1, 2 * upc_, upc_);
  ASSERT_TRUE(bs_->snapshot(id).ok());
  write_stamped(b, 2, upc_, upc_);
  write_stamped(b, 2, 2 * upc_ + 5, 1);
  ASSERT_TRUE(bs_->snapshot(id).ok());
  write_stamped(b, 3, 3 * upc_ + 7, 1);
  auto check = [&] {
    expect_stamped(b, 1, 0, upc_);
    expect_stamped(b, 2, upc_, upc_);
    expect_stamped(b, 1, 2 * upc_, 5);
    expect_stamped(b, 2, 2 * upc_ + 5, 1);
    expect_stamped(b, 1, 2 * upc_ + 6, upc_ - 6);
    expect_stamped(b, 0, 3 * upc_, 7);
    expect_stamped(b, 3, 3 * upc_ + 7, 1);
  };
  check();
  auto before = bs_->info(id);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(bs_->decouple(id).ok());
  auto mid = bs_->info(id);
  EXPECT_NE(mid->parent, before->parent);
  check();
  ASSERT_TRUE(bs_->inflate(id).ok());
  EXPECT_EQ(bs_->info(id)->parent, 0u);
  EXPECT_EQ(allocated(id), 4u);
  check();
  write_stamped(b, 4, 0, 1);  // the inflated blob writes in place
  expect_stamped(b, 4, 0, 1);
  expect_clean_fsck();
}

TEST_F(BlobIoMallocTest, WriteZeroes) {
  // Thick: zeroes in place.
  Blob& t = open(create(2, false));
  write_stamped(t, 1, 0, 2 * upc_);
  ASSERT_EQ(zeroes(t, 3, upc_), Errc::ok);
  expect_stamped(t, 1, 0, 3);
  expect_stamped(t, 0, 3, upc_);
  expect_stamped(t, 1, upc_ + 3, upc_ - 3);
  // Thin with nothing beneath: no allocation at all.
  const BlobId thin = create(4, true);
  Blob& n = open(thin);
  ASSERT_EQ(zeroes(n, 0, 4 * upc_), Errc::ok);
  EXPECT_EQ(allocated(thin), 0u);
  // Clone: a whole cluster takes a zeroed cluster without a copy; a part copies.
  const BlobId id = create(3, false);
  Blob& b = open(id);
  write_stamped(b, 2, 0, 3 * upc_);
  ASSERT_TRUE(bs_->snapshot(id).ok());
  const uint64_t copies = blob_channel_stats(ch_).copies;
  ASSERT_EQ(zeroes(b, upc_, upc_), Errc::ok);
  EXPECT_EQ(blob_channel_stats(ch_).copies, copies);
  EXPECT_EQ(allocated(id), 1u);
  ASSERT_EQ(zeroes(b, 2 * upc_ + 1, 2), Errc::ok);
  EXPECT_EQ(blob_channel_stats(ch_).copies, copies + 1);
  expect_stamped(b, 2, 0, upc_);
  expect_stamped(b, 0, upc_, upc_);
  expect_stamped(b, 2, 2 * upc_, 1);
  expect_stamped(b, 0, 2 * upc_ + 1, 2);
  expect_stamped(b, 2, 2 * upc_ + 3, upc_ - 3);
  // unmap goes the same way on the data path.
  ASSERT_EQ(run(*bs_, ch_, [&](bdev::IoCallback cb, void* a) { return bs_->unmap(ch_, b, 0, 1, cb, a); }), Errc::ok);
  expect_stamped(b, 0, 0, 1);
  expect_clean_fsck();
}

TEST_F(BlobIoMallocTest, ReadOnlyBlobsRefuseWrites) {
  const BlobId id = create(2, false);
  Blob& b = open(id);
  write_stamped(b, 1, 0, 1);
  auto snap = bs_->snapshot(id);
  ASSERT_TRUE(snap.ok());
  Blob& s = open(*snap);
  AlignedBuffer buf(io_unit_);
  Waiter w;
  Status st = bs_->write(ch_, s, buf.data(), 0, 1, &Waiter::cb, &w);
  EXPECT_EQ(st.code(), Errc::permission) << st.to_string();
  EXPECT_NE(st.message().find("read-only"), std::string::npos);
  EXPECT_EQ(bs_->write_zeroes(ch_, s, 0, 1, &Waiter::cb, &w).code(), Errc::permission);
  EXPECT_EQ(read(s, buf.data(), 0, 1), Errc::ok);
  EXPECT_EQ(tag_of(buf.data()), 1u);
  // A blob made read-only while open refuses from then on.
  ASSERT_TRUE(bs_->set_read_only(id).ok());
  EXPECT_EQ(bs_->write(ch_, b, buf.data(), 0, 1, &Waiter::cb, &w).code(), Errc::permission);
  EXPECT_FALSE(w.done);
}

TEST_F(BlobIoMallocTest, BadRequestsAreErrors) {
  Blob& b = open(create(2, false));
  const uint64_t end = 2 * upc_;
  AlignedBuffer buf(4 * io_unit_);
  Waiter w;
  auto expect = [&](Status st, Errc code) {
    EXPECT_EQ(st.code(), code) << st.to_string();
    EXPECT_FALSE(st.message().empty());
  };
  expect(bs_->read(ch_, b, buf.data(), end, 1, &Waiter::cb, &w), Errc::out_of_range);
  expect(bs_->read(ch_, b, buf.data(), end - 1, 2, &Waiter::cb, &w), Errc::out_of_range);
  expect(bs_->write(ch_, b, buf.data(), UINT64_MAX, 2, &Waiter::cb, &w), Errc::out_of_range);
  expect(bs_->write_zeroes(ch_, b, 1, UINT64_MAX, &Waiter::cb, &w), Errc::out_of_range);
  expect(bs_->read(ch_, b, buf.data(), 0, 0, &Waiter::cb, &w), Errc::invalid_argument);
  iovec short_iov{buf.data(), io_unit_};
  expect(bs_->readv(ch_, b, &short_iov, 1, 0, 2, &Waiter::cb, &w), Errc::invalid_argument);
  expect(bs_->readv(ch_, b, nullptr, 0, 0, 1, &Waiter::cb, &w), Errc::invalid_argument);
  iovec null_iov{nullptr, io_unit_};
  expect(bs_->writev(ch_, b, &null_iov, 1, 0, 1, &Waiter::cb, &w), Errc::invalid_argument);
  expect(bs_->read(nullptr, b, buf.data(), 0, 1, &Waiter::cb, &w), Errc::invalid_argument);
  // Another thread's channel.
  std::thread([&] { expect(bs_->read(ch_, b, buf.data(), 0, 1, &Waiter::cb, &w), Errc::invalid_argument); }).join();
  EXPECT_FALSE(w.done);
  EXPECT_EQ(blob_channel_outstanding(ch_), 0u);
  // Too fragmented to carry even one unit in one device request: an error at completion.
  std::vector<iovec> crumbs;
  for (uint32_t i = 0; i < io_unit_ / 16; ++i) crumbs.push_back({buf.data() + i * 16, 16});
  EXPECT_EQ(run(*bs_, ch_, [&](bdev::IoCallback cb, void* a) {
              return bs_->readv(ch_, b, crumbs.data(), static_cast<int>(crumbs.size()), 0, 1, cb, a);
            }),
            Errc::invalid_argument);
  // Putting a channel with requests outstanding is refused; the channel stays usable.
  Waiter p;
  ASSERT_TRUE(bs_->read(ch_, b, buf.data(), 0, 1, &Waiter::cb, &p).ok());
  EXPECT_EQ(bs_->put_channel(ch_).code(), Errc::busy);
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return p.done; }));
  EXPECT_EQ(p.status, Errc::ok);
}

TEST_F(BlobIoMallocTest, ChannelsArePerThreadAndCounted) {
  auto again = bs_->get_channel();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, ch_);
  EXPECT_TRUE(bs_->put_channel(*again).ok());
  BlobChannel* other = nullptr;
  std::thread([&] {
    auto c = bs_->get_channel();
    ASSERT_TRUE(c.ok());
    other = *c;
    EXPECT_TRUE(bs_->put_channel(*c).ok());
  }).join();
  EXPECT_NE(other, ch_);
  EXPECT_EQ(bs_->put_channel(reinterpret_cast<BlobChannel*>(&other)).code(), Errc::invalid_argument);
}

TEST_F(BlobIoMallocTest, FullPoolIsBackPressure) {
  Blob& b = open(create(4, false));
  constexpr uint32_t n = kBlobChannelRequests;
  AlignedBuffer buf(n * io_unit_);
  std::vector<Waiter> w(n + 1);
  for (uint32_t i = 0; i < n; ++i)
    ASSERT_TRUE(bs_->read(ch_, b, buf.data() + i * io_unit_, i % (4 * upc_), 1, &Waiter::cb, &w[i]).ok()) << i;
  Status st = bs_->read(ch_, b, buf.data(), 0, 1, &Waiter::cb, &w[n]);
  EXPECT_EQ(st.code(), Errc::busy);
  EXPECT_EQ(blob_channel_stats(ch_).busy, 1u);
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return blob_channel_outstanding(ch_) == 0; }));
  for (uint32_t i = 0; i < n; ++i) EXPECT_TRUE(w[i].done && w[i].status == Errc::ok) << i;
  EXPECT_TRUE(bs_->read(ch_, b, buf.data(), 0, 1, &Waiter::cb, &w[n]).ok());
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return w[n].done; }));
}

TEST_F(BlobIoMallocTest, FreezeGateCountsRequestsAndHoldsNewOnes) {
  const BlobId id = create(2, false);
  Blob& b = open(id);
  AlignedBuffer buf(4 * io_unit_);
  Waiter w[4];
  // Requests in flight are counted (once per channel, however many there are).
  ASSERT_TRUE(bs_->read(ch_, b, buf.data(), 0, 1, &Waiter::cb, &w[0]).ok());
  ASSERT_TRUE(bs_->write(ch_, b, buf.data() + io_unit_, 1, 1, &Waiter::cb, &w[1]).ok());
  EXPECT_EQ(b.in_flight.load(), 1u);
  // Frozen while they are in flight: new requests wait in the channel, the old ones finish.
  b.frozen.store(true);
  ASSERT_TRUE(bs_->read(ch_, b, buf.data() + 2 * io_unit_, 0, 1, &Waiter::cb, &w[2]).ok());
  ASSERT_TRUE(bs_->write(ch_, b, buf.data() + 3 * io_unit_, upc_, 1, &Waiter::cb, &w[3]).ok());
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return w[0].done && w[1].done; }));
  for (int i = 0; i < 50; ++i) bs_->poll(ch_);
  EXPECT_EQ(b.in_flight.load(), 0u);
  EXPECT_FALSE(w[2].done);
  EXPECT_FALSE(w[3].done);
  EXPECT_GT(blob_channel_stats(ch_).held, 0u);
  b.frozen.store(false);
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return w[2].done && w[3].done; }));
  EXPECT_EQ(w[2].status, Errc::ok);
  EXPECT_EQ(w[3].status, Errc::ok);
  EXPECT_EQ(b.in_flight.load(), 0u);
}

// A device with a tiny queue and small transfers: pieces and copies wait for bdev slots.
class BlobIoSmallQueueTest : public BlobIoTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(make_device("malloc", 64u << 20, "?qd=4&mt=8K")) << skip_reason_;
    init();
  }
};

TEST_F(BlobIoSmallQueueTest, PiecesAndCopiesWaitForDeviceSlots) {
  const BlobId id = create(8, false);
  Blob& b = open(id);
  write_stamped(b, 1, 0, 8 * upc_);
  ASSERT_TRUE(bs_->snapshot(id).ok());
  // Many requests at once, copying and crossing clusters, over a 4-deep device queue.
  constexpr int kReqs = 24;
  const uint64_t stride = 8 * upc_ / kReqs, len = stride / 2 + 1;
  std::vector<std::unique_ptr<AlignedBuffer>> bufs;
  std::vector<Waiter> w(kReqs);
  for (int i = 0; i < kReqs; ++i) {
    const uint64_t off = i * stride;
    bufs.push_back(std::make_unique<AlignedBuffer>(len * io_unit_));
    for (uint64_t u = 0; u < len; ++u) stamp(bufs.back()->data() + u * io_unit_, io_unit_, 100 + i, off + u);
    ASSERT_TRUE(bs_->write(ch_, b, bufs.back()->data(), off, len, &Waiter::cb, &w[i]).ok());
  }
  ASSERT_TRUE(poll_until(*bs_, ch_, [&] { return blob_channel_outstanding(ch_) == 0; }));
  for (int i = 0; i < kReqs; ++i) ASSERT_EQ(w[i].status, Errc::ok) << i;
  EXPECT_EQ(blob_channel_stats(ch_).copies, 8u);
  for (int i = 0; i < kReqs; ++i) {
    const uint64_t off = i * stride;
    expect_stamped(b, 100 + i, off, len);
    expect_stamped(b, 1, off + len, stride - len);
  }
  // Reads of many pieces at once through the same small queue.
  AlignedBuffer all(8 * upc_ * io_unit_);
  ASSERT_EQ(read(b, all.data(), 0, 8 * upc_), Errc::ok);
  EXPECT_EQ(tag_of(all.data() + (stride + 1) * io_unit_), 101u);
  expect_clean_fsck();
}

// Device errors: a failed copy fails its write and publishes nothing; the next write copies
// again; read errors reach the caller.
class BlobIoErrorTest : public BlobIoTest {
 protected:
  void SetUp() override {
    auto n = bdev::create("error:malloc:64M", "");
    if (!n.ok()) GTEST_SKIP() << "error bdev unavailable: " << n.status().to_string();
    dev_ = *n;
    auto inj = bdev::ErrorInjector::find(dev_);
    ASSERT_TRUE(inj.ok()) << inj.status().to_string();
    inj_ = std::make_unique<bdev::ErrorInjector>(*inj);
    init();
  }
  std::unique_ptr<bdev::ErrorInjector> inj_;  // its base goes with the error bdev
};

TEST_F(BlobIoErrorTest, FailedCopyFailsTheWriteAndPublishesNothing) {
  const BlobId id = create(2, false);
  Blob& b = open(id);
  write_stamped(b, 1, 0, 2 * upc_);
  ASSERT_TRUE(bs_->snapshot(id).ok());
  for (bdev::IoType t : {bdev::IoType::read, bdev::IoType::write}) {
    ASSERT_TRUE(inj_->set_rule(bdev::ErrorRule::next(bdev::io_bit(t), 1)).ok());
    AlignedBuffer buf(io_unit_);
    stamp(buf.data(), io_unit_, 2, 5);
    EXPECT_EQ(write(b, buf.data(), 5, 1), Errc::io_error) << bdev::io_type_name(t);
    EXPECT_EQ(allocated(id), 0u);
    expect_stamped(b, 1, 0, 2 * upc_);  // still the snapshot's data
  }
  ASSERT_TRUE(inj_->set_rule(bdev::ErrorRule::next(bdev::io_bit(bdev::IoType::read), 1)).ok());
  AlignedBuffer buf(io_unit_);
  EXPECT_EQ(read(b, buf.data(), upc_, 1), Errc::io_error);
  write_stamped(b, 2, 5, 1);  // the rules are spent: this one copies and lands
  EXPECT_EQ(allocated(id), 1u);
  expect_stamped(b, 1, 0, 5);
  expect_stamped(b, 2, 5, 1);
  expect_stamped(b, 1, 6, 2 * upc_ - 6);
  ASSERT_TRUE(bs_->sync_md().ok());  // the half-written clusters are zeroed for reuse
  expect_clean_fsck();
}

// ---- concurrency -----------------------------------------------------------------------

}  // namespace
}  // namespace sluice::blob
