// SluiceFS data path: append/sync/pread, direct and bounced reads, read-ahead, batches and
// async reads, pwrite, truncate, preallocate, out of space, concurrency, I/Os per sync.
#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "fs/format.h"
#include "aligned_buffer.h"
#include "fs_test_support.h"

namespace sluice::fs::testing {
namespace {

TEST_P(FsTest, AppendSyncReadBack) {
  auto f = open_w("/log");
  ASSERT_TRUE(f);
  std::string all;
  for (size_t i = 0, n = 1; i < 40; ++i, n = n * 3 % 9001 + 1) {
    std::string chunk = pattern(i, n, all.size());
    ASSERT_TRUE(f->append(chunk.data(), chunk.size()).ok());
    all += chunk;
    if (i % 3 == 0) {
      ASSERT_TRUE(f->sync().ok());
    }
    EXPECT_EQ(f->size(), all.size());
  }
  ASSERT_TRUE(f->flush().ok());
  EXPECT_EQ(read_all(*f), all);  // the writer sees its unsynced bytes
  auto r = open_r("/log");
  EXPECT_EQ(read_all(*r), all);  // so does another handle
  ASSERT_TRUE(f->sync().ok());
  ASSERT_TRUE(f->close().ok());
  ASSERT_TRUE(r->close().ok());
  EXPECT_EQ(f->append("x", 1).code(), Errc::invalid_argument);  // closed
  remount();
  EXPECT_EQ(slurp("/log"), all);
  auto st = fs_->stat("/log");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, all.size());
  EXPECT_GT(st->mtime_ns, 0);
}

TEST_P(FsTest, LargeFileAcrossManyClusters) {
  const std::string data = pattern(9, 3 * 1024 * 1024 + 777);
  auto f = open_w("/sst");
  for (size_t off = 0; off < data.size(); off += 100000)
    ASSERT_TRUE(f->append(data.data() + off, std::min<size_t>(100000, data.size() - off)).ok());
  ASSERT_TRUE(f->sync().ok());
  ASSERT_TRUE(f->close().ok());
  remount();
  auto r = open_r("/sst");
  EXPECT_EQ(r->size(), data.size());
  EXPECT_EQ(read_all(*r), data);
  // Aligned reads straight into an aligned buffer, and unaligned ones at odd places.
  const uint32_t bs = fs_->statfs().block_size;
  sluice::testing::AlignedBuffer buf(256 * 1024);
  auto got = r->pread(buf.data(), 64 * bs, 17 * bs);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 64u * bs);
  EXPECT_EQ(std::string(buf.data(), *got), data.substr(17 * bs, 64 * bs));
  for (uint64_t off : {uint64_t{1}, uint64_t{4095}, uint64_t{1u << 20} - 3, uint64_t{data.size() - 10}}) {
    std::string out(5000, '\0');
    auto n = r->pread(out.data(), out.size(), off);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, std::min<uint64_t>(5000, data.size() - off));
    EXPECT_EQ(out.substr(0, *n), data.substr(off, *n)) << off;
  }
  std::string tiny(10, '\0');
  EXPECT_EQ(*r->pread(tiny.data(), 10, data.size()), 0u);
  EXPECT_EQ(*r->pread(tiny.data(), 10, data.size() + 12345), 0u);
  // Sequential small reads (read-ahead serves most of them).
  std::string seq;
  for (uint64_t off = 0; off < data.size();) {
    std::string part(4000, '\0');
    auto n = r->pread(part.data(), part.size(), off);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    seq.append(part.data(), *n);
    off += *n;
  }
  EXPECT_EQ(seq, data);
}

TEST_P(FsTest, BatchAndAsyncReads) {
  const std::string data = pattern(11, 600000);
  write_file("/f", data);
  auto r = open_r("/f");
  const uint32_t bs = fs_->statfs().block_size;
  sluice::testing::AlignedBuffer a(64 * 1024), b(64 * 1024);
  std::string c(3000, '\0');
  ReadRequest reqs[3];
  reqs[0] = {.offset = 8 * bs, .length = 16 * bs, .buf = a.data()};
  reqs[1] = {.offset = 100, .length = 3000, .buf = c.data()};
  reqs[2] = {.offset = data.size() - 100, .length = 4096, .buf = b.data()};
  ASSERT_TRUE(r->read_batch(reqs, 3).ok());
  EXPECT_EQ(reqs[0].result, 16u * bs);
  EXPECT_EQ(std::string(a.data(), reqs[0].result), data.substr(8 * bs, 16 * bs));
  EXPECT_EQ(reqs[1].result, 3000u);
  EXPECT_EQ(c, data.substr(100, 3000));
  EXPECT_EQ(reqs[2].result, 100u);
  EXPECT_EQ(std::string(b.data(), 100), data.substr(data.size() - 100));

  int done = 0;
  ReadRequest q1{.offset = 0, .length = 32 * bs, .buf = a.data()};
  ReadRequest q2{.offset = 5, .length = 1000, .buf = c.data()};
  ASSERT_TRUE(r->read_async(&q1, [&](ReadRequest& q) { done += q.status.ok() ? 1 : 100; }).ok());
  ASSERT_TRUE(r->read_async(&q2, [&](ReadRequest& q) { done += q.status.ok() ? 1 : 100; }).ok());
  EXPECT_EQ(done, 0);  // callbacks run only inside poll()/wait_all()
  ASSERT_TRUE(r->wait_all().ok());
  EXPECT_EQ(done, 2);
  EXPECT_EQ(std::string(a.data(), 32 * bs), data.substr(0, 32 * bs));
  EXPECT_EQ(c.substr(0, 1000), data.substr(5, 1000));
}

TEST_P(FsTest, PwriteOverwritesAndExtends) {
  std::string data = pattern(12, 20000);
  write_file("/p", data);
  auto f = open_w("/p");
  ASSERT_TRUE(f->pwrite("HELLO", 5, 100).ok());
  data.replace(100, 5, "HELLO");
  ASSERT_TRUE(f->pwrite("TAIL", 4, 19998).ok());  // overlaps the end
  data.replace(19998, 2, "TA");
  data += "IL";
  ASSERT_TRUE(f->pwrite("GAP", 3, 20010).ok());  // past the end: zero-filled hole
  data += std::string(20010 - data.size(), '\0') + "GAP";
  EXPECT_EQ(read_all(*f), data);
  ASSERT_TRUE(f->sync().ok());
  ASSERT_TRUE(f->close().ok());
  remount();
  EXPECT_EQ(slurp("/p"), data);
}

TEST_P(FsTest, TruncateShrinksAndGrows) {
  std::string data = pattern(13, 300000);
  write_file("/t", data);
  auto f = open_w("/t");
  ASSERT_TRUE(f->truncate(1000).ok());
  EXPECT_EQ(f->size(), 1000u);
  ASSERT_TRUE(f->append("abc", 3).ok());
  ASSERT_TRUE(f->sync().ok());
  ASSERT_TRUE(f->close().ok());
  EXPECT_EQ(slurp("/t"), data.substr(0, 1000) + "abc");
  ASSERT_TRUE(fs_->truncate("/t", 5000).ok());
  std::string expect = data.substr(0, 1000) + "abc" + std::string(5000 - 1003, '\0');
  EXPECT_EQ(slurp("/t"), expect);
  EXPECT_EQ(fs_->truncate("/missing", 0).code(), Errc::not_found);
  remount();
  EXPECT_EQ(slurp("/t"), expect);
  // open with truncate
  auto g = open_w("/t", true);
  EXPECT_EQ(g->size(), 0u);
  ASSERT_TRUE(g->close().ok());
  EXPECT_EQ(fs_->stat("/t")->size, 0u);
}

TEST_P(FsTest, OutOfSpaceIsAnErrorAndRecoverable) {
  const std::string chunk = pattern(14, 256 * 1024);
  auto f = open_w("/fill");
  Status st;
  uint64_t written = 0;
  for (int i = 0; i < 1000 && st.ok(); ++i) {
    st = f->append(chunk.data(), chunk.size());
    if (st.ok()) written += chunk.size();
  }
  EXPECT_EQ(st.code(), Errc::no_space) << st.to_string();
  EXPECT_NE(st.message().find("/fill"), std::string::npos) << st.message();
  EXPECT_GT(written, 8u << 20);
  ASSERT_TRUE(f->close().ok());
  auto other = fs_->open("/other", {.write = true, .create = true});
  ASSERT_TRUE(fs_->unlink("/fill").ok());
  ASSERT_TRUE(fs_->sync_dir("/").ok());
  if (other.ok()) {
    ASSERT_TRUE((*other)->append(chunk.data(), chunk.size()).ok());
    ASSERT_TRUE((*other)->sync().ok());
    ASSERT_TRUE((*other)->close().ok());
  }
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok());
}

TEST_P(FsTest, TwoThreadsAppendToTheirOwnFiles) {
  constexpr int kThreads = 2;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto f = fs_->open(fmt::format("/wal{}", t), {.write = true, .create = true});
      if (!f.ok()) {
        ++failures;
        return;
      }
      uint64_t off = 0;
      for (int i = 0; i < 300; ++i) {
        std::string rec = pattern(t * 1000 + i, 100 + i % 50, off);
        if (!(*f)->append(rec.data(), rec.size()).ok()) ++failures;
        if (i % 10 == 9 && !(*f)->sync().ok()) ++failures;
        off += rec.size();
      }
      if (!(*f)->close().ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  remount();
  for (int t = 0; t < kThreads; ++t) {
    std::string expect;
    for (int i = 0; i < 300; ++i) expect += pattern(t * 1000 + i, 100 + i % 50, expect.size());
    EXPECT_EQ(slurp(fmt::format("/wal{}", t)), expect);
  }
}

// A thread that did I/O and is still alive when the file system is unmounted (RocksDB's pool
// threads) keeps working against the next mount.
TEST_P(FsTest, ThreadAliveAcrossUnmountKeepsWorking) {
  write_file("/f", pattern(31, 10000));
  std::promise<void> first_done, remounted;
  std::string a, b;
  std::thread worker([&] {
    a = slurp("/f");
    first_done.set_value();
    remounted.get_future().wait();
    b = slurp("/f");
  });
  first_done.get_future().wait();
  remount();
  remounted.set_value();
  worker.join();
  EXPECT_EQ(a, pattern(31, 10000));
  EXPECT_EQ(b, pattern(31, 10000));
}

// A thread that keeps its channel past the unmount (as RocksDB's pool threads do when the
// process exits) puts it back when it exits: nothing is reported, since nothing went wrong.
TEST_P(FsTest, AThreadExitingAfterUnmountReleasesItsChannelQuietly) {
  write_file("/f", "x");
  std::promise<void> read, unmounted;
  std::thread worker([&] {
    EXPECT_EQ(slurp("/f"), "x");
    read.set_value();
    unmounted.get_future().wait();
  });
  read.get_future().wait();
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  unmounted.set_value();
  worker.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("error"), std::string::npos) << err;
  EXPECT_EQ(err.find("still held"), std::string::npos) << err;
  remount();
  EXPECT_EQ(slurp("/f"), "x");
}

// Without an unmount (the process dies): synced appends come back from the tail markers,
// and synced namespace changes from the journal.
TEST_P(FsTest, RecoveryAfterAbandonKeepsSyncedDataAndNames) {
  ASSERT_TRUE(fs_->mkdir("/db").ok());
  write_file("/db/CURRENT", "old");
  write_file("/db/CURRENT.tmp", "new");
  ASSERT_TRUE(fs_->rename("/db/CURRENT.tmp", "/db/CURRENT").ok());
  ASSERT_TRUE(fs_->sync_dir("/db").ok());
  auto f = open_w("/db/000001.log");
  std::string synced;
  for (int i = 0; i < 30; ++i) {
    std::string rec = pattern(40 + i, 10 + i * 37, synced.size());
    ASSERT_TRUE(f->append(rec.data(), rec.size()).ok());
    ASSERT_TRUE(f->sync().ok());
    synced += rec;
  }
  const uint64_t commits = fs_->statfs().commits;
  ASSERT_TRUE(f->append("unsynced", 8).ok());
  ASSERT_TRUE(f->close().ok());  // writes the tail, but its size record is never committed
  EXPECT_EQ(fs_->statfs().commits, commits);
  fs_->abandon();
  fs_.reset();
  remount();
  EXPECT_EQ(slurp("/db/CURRENT"), "new");
  const std::string got = slurp("/db/000001.log");
  ASSERT_GE(got.size(), synced.size());
  EXPECT_EQ(got.substr(0, synced.size()), synced);
  EXPECT_EQ(got, synced + "unsynced");  // close wrote it with a marker: recovered too
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok());
}

TEST_P(FsTest, ReopenForAppendContinues) {
  std::string all = pattern(15, 5000);
  write_file("/a", all);
  for (int round = 0; round < 3; ++round) {
    auto f = open_w("/a");
    ASSERT_EQ(f->size(), all.size());
    std::string more = pattern(16 + round, 3333, all.size());
    ASSERT_TRUE(f->append(more.data(), more.size()).ok());
    all += more;
    ASSERT_TRUE(f->sync().ok());
    ASSERT_TRUE(f->close().ok());
    remount();
    EXPECT_EQ(slurp("/a"), all);
  }
}

// The durability promise in device I/Os: a sync of an append into space the file already
// owns is one write and one FLUSH, with no metadata write.
TEST_P(FsTest, SyncOfAnAppendIsOneWriteAndOneFlush) {
  auto f = open_w("/wal");
  ASSERT_TRUE(f->preallocate(1u << 20).ok());
  ASSERT_TRUE(f->append("first", 5).ok());
  ASSERT_TRUE(f->sync().ok());  // commits the create and the allocation
  auto dev = bdev::find(dev_);
  ASSERT_TRUE(dev);
  const uint32_t bs = fs_->statfs().block_size;
  int multi = 0;
  uint64_t len = 5;
  for (int i = 0; i < 50; ++i) {
    const size_t n = 20 + i % 7;
    const bool crosses = marker_block(len + n, bs) != len / bs;
    auto before = dev->stats();
    std::string rec = pattern(i, n);
    ASSERT_TRUE(f->append(rec.data(), n).ok());
    ASSERT_TRUE(f->sync().ok());
    len += n;
    auto after = dev->stats();
    const uint64_t writes = after.by_type[static_cast<int>(bdev::IoType::write)].ops.get() -
                            before.by_type[static_cast<int>(bdev::IoType::write)].ops.get();
    const uint64_t flushes = after.by_type[static_cast<int>(bdev::IoType::flush)].ops.get() -
                             before.by_type[static_cast<int>(bdev::IoType::flush)].ops.get();
    if (crosses) {
      ++multi;  // the tail spans two blocks: everything else first, then the marker's block
      EXPECT_LE(writes, 2u);
      EXPECT_EQ(flushes, 2u);
    } else {
      EXPECT_EQ(writes, 1u) << "sync " << i;
      EXPECT_EQ(flushes, 1u) << "sync " << i;
    }
  }
  EXPECT_LT(multi, 50);
  ASSERT_TRUE(f->close().ok());
}


TEST_P(FsTest, ReadCacheServesRepeatedReadsAndSeesChanges) {
  remount({.read_cache_bytes = 4u << 20, .readahead_bytes = 0});
  std::string data = pattern(21, 700000);
  write_file("/c", data);
  auto r = open_r("/c");
  std::mt19937_64 rng(5);
  for (int pass = 0; pass < 2; ++pass) {
    std::mt19937_64 same(7);
    for (int i = 0; i < 200; ++i) {
      const uint64_t off = same() % (data.size() - 3000);
      std::string out(1 + same() % 3000, '\0');
      ASSERT_EQ(*r->pread(out.data(), out.size(), off), out.size());
      ASSERT_EQ(out, data.substr(off, out.size())) << off;
    }
  }
  FsStat s = fs_->statfs();
  EXPECT_GT(s.cache_hits, 200u);  // the second pass is all hits
  EXPECT_GT(s.cache_misses, 0u);
  // Bytes changed in place are never served stale.
  auto w = open_w("/c");
  ASSERT_TRUE(w->pwrite("CHANGED", 7, 1000).ok());
  data.replace(1000, 7, "CHANGED");
  ASSERT_TRUE(w->truncate(600000).ok());
  data.resize(600000);
  std::string more = pattern(22, 50000);
  ASSERT_TRUE(w->append(more.data(), more.size()).ok());
  data += more;
  ASSERT_TRUE(w->sync().ok());
  ASSERT_TRUE(w->close().ok());
  EXPECT_EQ(read_all(*r), data);
  std::string out(100, '\0');
  ASSERT_EQ(*r->pread(out.data(), 100, 950), 100u);
  EXPECT_EQ(out, data.substr(950, 100));
  ASSERT_EQ(*r->pread(out.data(), 100, 600010), 100u);
  EXPECT_EQ(out, data.substr(600010, 100));
}

TEST_P(FsTest, SequentialReadersGetReadAhead) {
  remount({.readahead_bytes = 256 * 1024});
  const std::string data = pattern(23, 2u << 20);
  write_file("/seq", data);
  auto r = open_r("/seq");
  const FsStat before = fs_->statfs();
  std::string got;
  int reads = 0;
  for (uint64_t off = 0; off < data.size(); ++reads) {
    std::string part(3001, '\0');  // unaligned on purpose
    auto n = r->pread(part.data(), part.size(), off);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.append(part.data(), *n);
    off += *n;
  }
  EXPECT_EQ(got, data);
  const FsStat after = fs_->statfs();
  const uint64_t fills = after.readahead_fills - before.readahead_fills;
  EXPECT_GT(fills, 0u);
  EXPECT_LE(fills + (after.bounced_reads - before.bounced_reads), 16u) << "of " << reads << " reads";
}

}  // namespace
}  // namespace sluice::fs::testing
