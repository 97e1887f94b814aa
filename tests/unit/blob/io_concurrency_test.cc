// The blob data path under concurrency: many threads allocating and copying on write,
// snapshots taken while another thread writes.
#include "io_test_support.h"

namespace sluice::blob {
namespace {

using namespace iotest;

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
}  // namespace
}  // namespace sluice::blob
