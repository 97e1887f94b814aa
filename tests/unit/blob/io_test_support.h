// Shared fixtures of the blob data-path tests (io_test.cc, io_concurrency_test.cc,
// io_bench_test.cc).
#pragma once

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

#include "aligned_buffer.h"
#include "bdev_handle.h"
#include "temp_file.h"

// A named namespace, not an anonymous one: gtest requires one fixture type across the
// test files of a suite.
namespace sluice::blob::iotest {
using sluice::testing::poll_until;

using sluice::testing::AlignedBuffer;
using sluice::testing::TempFile;

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
inline bool poll_until(Blobstore& bs, BlobChannel* ch, Cond cond, uint64_t timeout_ms = kTimeoutMs) {
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
inline Errc run(Blobstore& bs, BlobChannel* ch, Submit&& submit) {
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
inline void stamp(char* p, uint32_t io_unit, uint64_t tag, uint64_t unit) {
  for (uint32_t i = 0; i < io_unit; i += 16) {
    std::memcpy(p + i, &tag, 8);
    std::memcpy(p + i + 8, &unit, 8);
  }
}
inline uint64_t tag_of(const char* p) {
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
    for (auto& p : bs_->check()) ADD_FAILURE() << p;
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

// ---- malloc only ---------------------------------------------------------------------------

class BlobIoMallocTest : public BlobIoTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(make_device("malloc")) << skip_reason_;
    init();
  }
};

}  // namespace sluice::blob::iotest
