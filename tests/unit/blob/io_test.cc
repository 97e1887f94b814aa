// The blob data path: read/write/write_zeroes through thick, thin and cloned blobs, on
// malloc and (when available) a uring file; allocation and copy-on-write under concurrency,
// the freeze gate, crash semantics of first writes, validation and back-pressure.
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/clock.h"
#include "bdev/bdev.h"
#include "bdev/error_inject.h"
#include "blob/blob.h"
#include "blob/io.h"
#include "blob/store.h"
#include "../bdev/test_support.h"

namespace sluice::blob {
namespace {

using bdev::testing::AlignedBuffer;
using bdev::testing::TempFile;

constexpr uint32_t kCluster = 64 * 1024;
constexpr uint64_t kTimeoutMs = 20000;

struct Waiter {
  bool done = false;
  Errc status = Errc::ok;
  static void cb(void* arg, Errc st) {
    auto* w = static_cast<Waiter*>(arg);
    w->status = st;
    w->done = true;
  }
};

// Polls `ch` until `cond` holds; false after the timeout.
template <typename Cond>
bool poll_until(Blobstore& bs, BlobChannel* ch, Cond cond, uint64_t timeout_ms = kTimeoutMs) {
  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  while (!cond()) {
    bs.poll(ch);
    if (clock::now_ns() > deadline) return false;
  }
  return true;
}

// Submits one request and polls it to completion. Returns the submit error or the completion
// status; Errc::aborted on timeout.
template <typename Submit>
Errc run(Blobstore& bs, BlobChannel* ch, Submit&& submit) {
  auto w = std::make_unique<Waiter>();
  Status st = submit(&Waiter::cb, w.get());
  if (!st.ok()) return st.code();
  EXPECT_FALSE(w->done) << "callback ran inside submit";
  if (!poll_until(bs, ch, [&] { return w->done; })) {
    (void)w.release();  // may still complete into it
    return Errc::aborted;
  }
  return w->status;
}

// A unit stamped with (tag, unit) so misplaced or stale data never matches.
void stamp(char* p, uint32_t io_unit, uint64_t tag, uint64_t unit) {
  for (uint32_t i = 0; i < io_unit; i += 16) {
    std::memcpy(p + i, &tag, 8);
    std::memcpy(p + i + 8, &unit, 8);
  }
}
uint64_t tag_of(const char* p) {
  uint64_t t;
  std::memcpy(&t, p, 8);
  return t;
}

class BlobIoTest : public ::testing::Test {
 protected:
  void TearDown() override {
    release();
    bs_.reset();
    if (!dev_.empty()) (void)bdev::unregister(dev_);
  }

  // malloc:SPEC or uring (a temp file); false (with a skip) when the device is unavailable.
  bool make_device(const std::string& backend, uint64_t size = 64u << 20, const std::string& opts = {}) {
    std::string spec;
    if (backend == "uring") {
      file_ = std::make_unique<TempFile>(size);
      spec = "uring:" + file_->path() + opts;
    } else {
      spec = fmt::format("malloc:{}{}", size, opts);
    }
    auto n = bdev::create(spec, "");
    if (!n.ok()) {
      skip_reason_ = fmt::format("{} unavailable: {}", spec, n.status().to_string());
      return false;
    }
    dev_ = *n;
    return true;
  }
  void init(uint32_t cluster = kCluster) {
    InitOptions o;
    o.cluster_size = cluster;
    auto s = Blobstore::init(dev_, o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    bs_ = std::move(s.value());
    io_unit_ = bs_->store_info().io_unit;
    upc_ = cluster / io_unit_;
    auto ch = bs_->get_channel();
    ASSERT_TRUE(ch.ok()) << ch.status().to_string();
    ch_ = *ch;
  }
  // Puts the channel and closes the blobs (before an unload, reload or crash).
  void release() {
    for (auto& b : open_) (void)bs_->close(std::move(b));
    open_.clear();
    if (ch_) {
      EXPECT_TRUE(bs_->put_channel(ch_).ok());
    }
    ch_ = nullptr;
  }
  void crash_and_reload() {
    release();
    bs_->abandon();
    bs_.reset();
    auto s = Blobstore::load(dev_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    bs_ = std::move(s.value());
    auto ch = bs_->get_channel();
    ASSERT_TRUE(ch.ok());
    ch_ = *ch;
  }
  BlobId create(uint64_t clusters, bool thin) {
    CreateOptions o;
    o.size_clusters = clusters;
    o.thin = thin;
    auto id = bs_->create(o);
    EXPECT_TRUE(id.ok()) << id.status().to_string();
    return id.ok() ? *id : 0;
  }
  Blob& open(BlobId id) {
    auto b = bs_->open(id);
    EXPECT_TRUE(b.ok()) << b.status().to_string();
    open_.push_back(*b);
    return *open_.back();
  }
  Errc write(Blob& b, const char* buf, uint64_t off, uint64_t len) {
    return run(*bs_, ch_, [&](bdev::IoCallback cb, void* a) { return bs_->write(ch_, b, buf, off, len, cb, a); });
  }
  Errc read(Blob& b, char* buf, uint64_t off, uint64_t len) {
    return run(*bs_, ch_, [&](bdev::IoCallback cb, void* a) { return bs_->read(ch_, b, buf, off, len, cb, a); });
  }
  Errc zeroes(Blob& b, uint64_t off, uint64_t len) {
    return run(*bs_, ch_, [&](bdev::IoCallback cb, void* a) { return bs_->write_zeroes(ch_, b, off, len, cb, a); });
  }
  // Writes units [off, off+len) stamped with `tag`.
  void write_stamped(Blob& b, uint64_t tag, uint64_t off, uint64_t len) {
    AlignedBuffer buf(len * io_unit_);
    for (uint64_t u = 0; u < len; ++u) stamp(buf.data() + u * io_unit_, io_unit_, tag, off + u);
    ASSERT_EQ(write(b, buf.data(), off, len), Errc::ok);
  }
  // Expects units [off, off+len) to carry `tag` (0: zeroes).
  void expect_stamped(Blob& b, uint64_t tag, uint64_t off, uint64_t len) {
    AlignedBuffer buf(len * io_unit_), want(len * io_unit_);
    std::memset(buf.data(), 0xA5, len * io_unit_);  // a zero fill must overwrite this
    if (tag != 0)
      for (uint64_t u = 0; u < len; ++u) stamp(want.data() + u * io_unit_, io_unit_, tag, off + u);
    ASSERT_EQ(read(b, buf.data(), off, len), Errc::ok);
    for (uint64_t u = 0; u < len; ++u)
      ASSERT_EQ(std::memcmp(buf.data() + u * io_unit_, want.data() + u * io_unit_, io_unit_), 0)
          << "blob " << b.id() << " unit " << off + u << ": want tag " << tag << ", got " << tag_of(buf.data() + u * io_unit_);
  }
  uint64_t allocated(BlobId id) {
    auto i = bs_->info(id);
    EXPECT_TRUE(i.ok());
    return i.ok() ? i->allocated_clusters : 0;
  }
  void expect_clean_fsck() {
    for (auto& p : bs_->store().check()) ADD_FAILURE() << p;
  }

  std::unique_ptr<TempFile> file_;
  std::string dev_;
  std::string skip_reason_;
  std::unique_ptr<Blobstore> bs_;
  BlobChannel* ch_ = nullptr;
  std::vector<std::shared_ptr<Blob>> open_;
  uint32_t io_unit_ = 0;
  uint64_t upc_ = 0;  // io units per cluster
};

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

// ---- malloc only ---------------------------------------------------------------------------

class BlobIoMallocTest : public BlobIoTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(make_device("malloc")) << skip_reason_;
    init();
  }
};

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

// Each thread writes units u with u % threads == k, all over the same thin clusters (and a
// few of its own): every unit ends with its writer's data, every cluster allocated once.
TEST_F(BlobIoMallocTest, ConcurrentWritersToOneThinBlob) {
  constexpr int kThreads = 4;
  constexpr uint64_t kShared = 6, kOwn = 2;  // clusters
  const uint64_t size = kShared + kThreads * kOwn;
  const BlobId id = create(size, true);
  Blob& b = open(id);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      auto ch = bs_->get_channel();
      if (!ch.ok()) return (void)failed.store(true);
      AlignedBuffer buf(64 * io_unit_);
      std::vector<Waiter> w(64);
      std::vector<uint64_t> units;
      for (uint64_t u = k; u < kShared * upc_; u += kThreads) units.push_back(u);
      for (uint64_t u = (kShared + k * kOwn) * upc_; u < (kShared + (k + 1) * kOwn) * upc_; ++u) units.push_back(u);
      std::shuffle(units.begin(), units.end(), std::mt19937_64(k));
      // Up to 64 writes in flight per thread.
      size_t next = 0, done = 0;
      std::vector<int> slot_of(64, -1);
      const uint64_t deadline = clock::now_ns() + kTimeoutMs * 1000000;
      while (done < units.size()) {
        if (clock::now_ns() > deadline) {
          failed.store(true);
          break;
        }
        for (int s = 0; s < 64 && next < units.size(); ++s) {
          if (slot_of[s] >= 0) continue;
          w[s] = Waiter{};
          stamp(buf.data() + s * io_unit_, io_unit_, 10 + k, units[next]);
          Status st = bs_->write(*ch, b, buf.data() + s * io_unit_, units[next], 1, &Waiter::cb, &w[s]);
          if (st.code() == Errc::busy) break;
          if (!st.ok()) return (void)failed.store(true);
          slot_of[s] = static_cast<int>(next++);
        }
        bs_->poll(*ch);
        for (int s = 0; s < 64; ++s) {
          if (slot_of[s] >= 0 && w[s].done) {
            if (w[s].status != Errc::ok) failed.store(true);
            slot_of[s] = -1;
            ++done;
          }
        }
        if (failed.load()) break;
      }
      while (blob_channel_outstanding(*ch) != 0 && clock::now_ns() < deadline + kTimeoutMs * 1000000) bs_->poll(*ch);
      if (!bs_->put_channel(*ch).ok()) failed.store(true);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed.load());
  EXPECT_EQ(allocated(id), size);
  AlignedBuffer buf(size * upc_ * io_unit_);
  ASSERT_EQ(read(b, buf.data(), 0, size * upc_), Errc::ok);
  for (uint64_t u = 0; u < size * upc_; ++u) {
    const uint64_t k = u < kShared * upc_ ? u % kThreads : (u / upc_ - kShared) / kOwn;
    AlignedBuffer want(io_unit_);
    stamp(want.data(), io_unit_, 10 + k, u);
    ASSERT_EQ(std::memcmp(buf.data() + u * io_unit_, want.data(), io_unit_), 0) << "unit " << u;
  }
  expect_clean_fsck();
}

// Threads write different units of the same clusters of a clone: each cluster is copied
// exactly once, and the result merges every writer over the snapshot's data.
TEST_F(BlobIoMallocTest, ConcurrentCopyOnWriteOfTheSameClusters) {
  constexpr int kThreads = 3;
  constexpr uint64_t kClusters = 6;
  const BlobId id = create(kClusters, false);
  Blob& b = open(id);
  write_stamped(b, 1, 0, kClusters * upc_);
  ASSERT_TRUE(bs_->snapshot(id).ok());
  std::atomic<uint64_t> copies{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      auto ch = bs_->get_channel();
      if (!ch.ok()) return (void)failed.store(true);
      AlignedBuffer buf(kClusters * io_unit_);
      std::vector<Waiter> w(kClusters);
      // One write per cluster, all in flight together: unit (c, 2 + k).
      for (uint64_t c = 0; c < kClusters; ++c) {
        const uint64_t u = c * upc_ + 2 + k;
        stamp(buf.data() + c * io_unit_, io_unit_, 20 + k, u);
        if (!bs_->write(*ch, b, buf.data() + c * io_unit_, u, 1, &Waiter::cb, &w[c]).ok()) failed.store(true);
      }
      const uint64_t deadline = clock::now_ns() + kTimeoutMs * 1000000;
      while (blob_channel_outstanding(*ch) != 0 && clock::now_ns() < deadline) bs_->poll(*ch);
      for (auto& x : w)
        if (!x.done || x.status != Errc::ok) failed.store(true);
      copies += blob_channel_stats(*ch).copies;
      (void)bs_->put_channel(*ch);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed.load());
  EXPECT_EQ(copies.load(), kClusters);
  EXPECT_EQ(allocated(id), kClusters);
  for (uint64_t c = 0; c < kClusters; ++c) {
    expect_stamped(b, 1, c * upc_, 2);
    for (int k = 0; k < kThreads; ++k) expect_stamped(b, 20 + k, c * upc_ + 2 + k, 1);
    expect_stamped(b, 1, c * upc_ + 2 + kThreads, upc_ - 2 - kThreads);
  }
  expect_clean_fsck();
}

// Snapshots taken while another thread writes (the freeze gate): each snapshot holds a state
// the writer actually passed through, and the blob ends with every write.
TEST_F(BlobIoMallocTest, SnapshotsWhileAnotherThreadWrites) {
  constexpr uint64_t kUnitsPerPass = 256;
  constexpr size_t kSnapshots = 12;
  const BlobId id = create(4, true);
  Blob& b = open(id);
  std::atomic<bool> failed{false}, stop{false};
  std::atomic<int> passes{0};
  const uint64_t stride = 4 * upc_ / kUnitsPerPass;  // spread over every cluster
  std::thread writer([&] {
    auto ch = bs_->get_channel();
    if (!ch.ok()) return (void)failed.store(true);
    AlignedBuffer buf(io_unit_);
    const uint64_t give_up = clock::now_ns() + kTimeoutMs * 1000000;
    for (int pass = 1; !stop.load() && !failed.load() && clock::now_ns() < give_up; ++pass) {
      // One write at a time, in order: a snapshot sees pass p on a prefix, p - 1 after it.
      for (uint64_t i = 0; i < kUnitsPerPass; ++i) {
        stamp(buf.data(), io_unit_, pass, i * stride);
        Waiter w;
        Status st = bs_->write(*ch, b, buf.data(), i * stride, 1, &Waiter::cb, &w);
        const uint64_t deadline = clock::now_ns() + kTimeoutMs * 1000000;
        while (st.ok() && !w.done && clock::now_ns() < deadline) bs_->poll(*ch);
        if (!st.ok() || !w.done || w.status != Errc::ok) {
          failed.store(true);
          break;
        }
      }
      if (!failed.load()) passes.store(pass);
    }
    if (!stop.load()) failed.store(true);  // gave up: too slow
    if (!bs_->put_channel(*ch).ok()) failed.store(true);
  });
  struct Joiner {  // a failed assertion below must not leave the writer running
    std::thread& t;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop.store(true);
      if (t.joinable()) t.join();
    }
  } joiner{writer, stop};
  std::vector<BlobId> snaps;
  std::mt19937 rng(7);
  while (snaps.size() < kSnapshots && !failed.load()) {
    auto s = bs_->snapshot(id);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    snaps.push_back(*s);
    // Let the writer get on (a pass or more), then cut in at a random point.
    const int seen = passes.load();
    const uint64_t deadline = clock::now_ns() + kTimeoutMs * 1000000;
    while (passes.load() == seen && !failed.load() && clock::now_ns() < deadline) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
  }
  stop.store(true);
  writer.join();
  ASSERT_FALSE(failed.load());
  ASSERT_EQ(snaps.size(), kSnapshots);
  const int final_pass = passes.load();
  AlignedBuffer buf(io_unit_);
  int last_seen = 0;
  for (BlobId sid : snaps) {
    Blob& s = open(sid);
    std::vector<uint64_t> tags;
    for (uint64_t i = 0; i < kUnitsPerPass; ++i) {
      ASSERT_EQ(read(s, buf.data(), i * stride, 1), Errc::ok);
      AlignedBuffer want(io_unit_);
      const uint64_t t = tag_of(buf.data());
      if (t != 0) stamp(want.data(), io_unit_, t, i * stride);
      ASSERT_EQ(std::memcmp(buf.data(), want.data(), io_unit_), 0) << "snapshot " << sid << " unit " << i * stride;
      tags.push_back(t);
    }
    // Non-increasing along the pass, spanning at most two consecutive passes.
    for (size_t i = 1; i < tags.size(); ++i) ASSERT_LE(tags[i], tags[i - 1]) << "snapshot " << sid << " at " << i;
    ASSERT_LE(tags.front() - tags.back(), 1u) << "snapshot " << sid;
    ASSERT_GE(static_cast<int>(tags.front()), last_seen) << "snapshots go back in time";
    last_seen = static_cast<int>(tags.front());
  }
  for (uint64_t i = 0; i < kUnitsPerPass; ++i) expect_stamped(b, final_pass, i * stride, 1);
  expect_clean_fsck();
}


// ---- benchmark (not a test: run with --gtest_also_run_disabled_tests) -------------------

namespace bench {

// Random 4 KiB reads at queue depth 32 for `seconds`; returns IOPS. `submit(buf, unit, cb,
// arg)` issues one read of 4 KiB at io unit `unit`, `poll()` reaps.
uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

template <typename Submit, typename Poll>
double randread_qd32(uint64_t units, uint32_t unit_bytes, double seconds, double* cpu_ns_per_io, Submit&& submit,
                     Poll&& poll) {
  constexpr int kQd = 32;
  const uint64_t per_io = 4096 / unit_bytes;
  struct Slot {
    void* ctx;
    int i;
  };
  struct Ctx {
    std::mt19937_64 rng{1};
    uint64_t units, per_io, ops = 0;
    bool stop = false;
    int inflight = 0;
    std::vector<std::unique_ptr<AlignedBuffer>> bufs;
    std::vector<Slot> slots;
    std::function<Status(int)> issue;
  } ctx;
  ctx.units = units;
  ctx.per_io = per_io;
  for (int i = 0; i < kQd; ++i) {
    ctx.bufs.push_back(std::make_unique<AlignedBuffer>(4096));
    ctx.slots.push_back({&ctx, i});
  }
  static constexpr bdev::IoCallback on_done = [](void* arg, Errc st) {
    auto* s = static_cast<Slot*>(arg);
    auto* c = static_cast<Ctx*>(s->ctx);
    EXPECT_EQ(st, Errc::ok);
    ++c->ops;
    --c->inflight;
    if (!c->stop && c->issue(s->i).ok()) ++c->inflight;
  };
  ctx.issue = [&](int i) {
    const uint64_t unit = ctx.rng() % (ctx.units / ctx.per_io) * ctx.per_io;
    return submit(ctx.bufs[i]->data(), unit, on_done, &ctx.slots[i]);
  };
  for (int i = 0; i < kQd; ++i)
    if (ctx.issue(i).ok()) ++ctx.inflight;
  const uint64_t start = clock::now_ns();
  const uint64_t cpu_start = thread_cpu_ns();
  const uint64_t end = start + static_cast<uint64_t>(seconds * 1e9);
  uint64_t now = start;
  while (now < end) {
    for (int i = 0; i < 16; ++i) poll();
    now = clock::now_ns();
  }
  const uint64_t ops = ctx.ops;
  *cpu_ns_per_io = static_cast<double>(thread_cpu_ns() - cpu_start) / static_cast<double>(ops);
  ctx.stop = true;
  while (ctx.inflight > 0) poll();
  return static_cast<double>(ops) / (static_cast<double>(now - start) / 1e9);
}

void compare(const std::string& spec, double seconds, int rounds) {
  auto name = bdev::create(spec, "");
  if (!name.ok()) {
    std::printf("%-40s unavailable: %s\n", spec.c_str(), name.status().to_string().c_str());
    return;
  }
  uint64_t blob_units = 0;
  BlobId id = 0;
  {
    InitOptions o;
    o.cluster_size = 1u << 20;
    auto bs = Blobstore::init(*name, o);
    ASSERT_TRUE(bs.ok()) << bs.status().to_string();
    const StoreInfo si = (*bs)->store_info();
    auto b = (*bs)->create(CreateOptions{si.free_clusters, false, {}});
    ASSERT_TRUE(b.ok());
    id = *b;
    blob_units = si.free_clusters * (si.cluster_size / si.io_unit);
    // Fill the blob so reads touch real data (files: not holes).
    auto blob = (*bs)->open(id);
    auto ch = (*bs)->get_channel();
    ASSERT_TRUE(blob.ok() && ch.ok());
    AlignedBuffer buf(1u << 20);
    buf.fill_pattern(3);
    const uint64_t per = (1u << 20) / si.io_unit;
    for (uint64_t u = 0; u < blob_units; u += per) {
      Waiter w;
      ASSERT_TRUE((*bs)->write(*ch, **blob, buf.data(), u, per, &Waiter::cb, &w).ok());
      while (!w.done) (*bs)->poll(*ch);
    }
    ASSERT_TRUE((*bs)->put_channel(*ch).ok());
    ASSERT_TRUE((*bs)->close(std::move(*blob)).ok());
    ASSERT_TRUE((*bs)->unload().ok());
  }
  double raw_sum = 0, blob_sum = 0, raw_cpu = 0, blob_cpu = 0, cpu = 0;
  // Alternate which goes first, so drift in the machine's load favours neither.
  for (int r = 0; r < rounds; ++r) {
    auto run_raw = [&] {
      auto desc = bdev::open(*name);
      ASSERT_TRUE(desc.ok());
      auto ch = (*desc)->get_channel();
      ASSERT_TRUE(ch.ok());
      const uint32_t bs = (*desc)->geometry().block_size;
      const uint64_t blocks = (*desc)->geometry().num_blocks;
      double iops = randread_qd32(
          blocks, bs, seconds, &cpu,
          [&](void* buf, uint64_t lba, bdev::IoCallback cb, void* arg) {
            return (*desc)->read(*ch, buf, lba, 4096 / bs, cb, arg);
          },
          [&] { bdev::poll(*ch); });
      raw_sum += iops;
      raw_cpu += cpu;
      ASSERT_TRUE((*desc)->put_channel(*ch).ok());
    };
    auto run_blob = [&] {
      // A null device keeps nothing: format it again instead of loading.
      const bool keeps_data = spec.rfind("null:", 0) != 0;
      InitOptions o;
      o.cluster_size = 1u << 20;
      auto bs = keeps_data ? Blobstore::load(*name) : Blobstore::init(*name, o);
      ASSERT_TRUE(bs.ok()) << bs.status().to_string();
      if (!keeps_data) {
        ASSERT_EQ(*(*bs)->create(CreateOptions{(*bs)->store_info().free_clusters, false, {}}), id);
      }
      auto blob = (*bs)->open(id);
      auto ch = (*bs)->get_channel();
      ASSERT_TRUE(blob.ok() && ch.ok());
      const uint32_t unit = (*bs)->store_info().io_unit;
      double iops = randread_qd32(
          blob_units, unit, seconds, &cpu,
          [&](void* buf, uint64_t u, bdev::IoCallback cb, void* arg) {
            return (*bs)->read(*ch, **blob, buf, u, 4096 / unit, cb, arg);
          },
          [&] { (*bs)->poll(*ch); });
      blob_sum += iops;
      blob_cpu += cpu;
      ASSERT_TRUE((*bs)->put_channel(*ch).ok());
      ASSERT_TRUE((*bs)->close(std::move(*blob)).ok());
    };
    if (r % 2 == 0) {
      run_raw();
      run_blob();
    } else {
      run_blob();
      run_raw();
    }
  }
  std::printf("%-22s raw %9.0f IOPS %6.0f ns/IO   blob %9.0f IOPS %6.0f ns/IO   IOPS blob/raw %.3f\n",
              spec.substr(0, 22).c_str(), raw_sum / rounds, raw_cpu / rounds, blob_sum / rounds, blob_cpu / rounds,
              blob_sum / raw_sum);
  (void)bdev::unregister(*name);
}

}  // namespace bench

TEST(BlobIoBench, DISABLED_RandRead4kQd32BlobVsRaw) {
  const char* secs = std::getenv("SLUICE_BENCH_SECONDS");
  const double seconds = secs ? std::atof(secs) : 2.0;
  const char* only = std::getenv("SLUICE_BENCH_ONLY");  // e.g. "null" or "malloc"
  auto want = [&](const char* what) { return only == nullptr || std::strstr(what, only) != nullptr; };
  if (want("null:1G?bs=4096")) bench::compare("null:1G?bs=4096", seconds, 4);  // pure per-I/O overhead
  if (want("malloc:1G?bs=4096")) bench::compare("malloc:1G?bs=4096", seconds, 6);
  if (want("malloc:1G?bs=512")) bench::compare("malloc:1G?bs=512", seconds, 4);
  if (want("uring")) {
    TempFile f(1u << 30);
    bench::compare("uring:" + f.path(), seconds, 4);
  }
}

}  // namespace
}  // namespace sluice::blob
