// The bdev conformance suite: the same assertions against every backend and against the
// virtual bdevs stacked over malloc. A new backend is done when it passes this file.
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "base/size.h"
#include "bdev/backend.h"
#include "conformance.h"

#include "aligned_buffer.h"
#include "bdev_handle.h"
#include "temp_file.h"

namespace sluice::bdev {

std::ostream& operator<<(std::ostream& os, const ConformanceBackend& b) { return os << b.label; }

namespace {
using sluice::testing::AlignedBuffer;

using Backend = ConformanceBackend;

std::vector<Backend>& added_backends() {
  static auto* added = new std::vector<Backend>();  // filled during static initialization
  return *added;
}

class Conformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { open_with(""); }
  void TearDown() override { close_all(); }

  // Builds the device; `extra` adds options (e.g. "mt=8K") to the innermost spec.
  void open_with(const std::string& extra) {
    close_all();
    std::string spec = GetParam().spec;
    if (GetParam().prepare) {
      auto prepared = GetParam().prepare();
      ASSERT_TRUE(prepared.ok()) << prepared.status().to_string();
      prepared_ = true;
      spec = *prepared;
    }
    if (auto at = spec.find("{file}"); at != std::string::npos) {
      file_ = std::make_unique<testing::TempFile>(64ull << 20);
      spec.replace(at, 6, file_->path());
    }
    if (!extra.empty()) spec += (spec.find('?') == std::string::npos ? "?" : "&") + extra;
    auto name = create(spec);
    ASSERT_TRUE(name.ok()) << name.status().to_string();
    name_ = *name;
    auto d = open(name_);
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    desc_ = std::move(d.value());
    auto ch = desc_->get_channel();
    ASSERT_TRUE(ch.ok()) << ch.status().to_string();
    ch_ = *ch;
    bs_ = desc_->geometry().block_size;
  }

  void close_all() {
    if (ch_) {
      EXPECT_TRUE(desc_->put_channel(ch_).ok());
    }
    ch_ = nullptr;
    desc_.reset();
    if (!name_.empty()) {
      // Removes the stack top-down; a virtual bdev removes its base itself.
      EXPECT_TRUE(unregister(name_).ok());
      for (auto& n : list())
        if (n.rfind(name_, 0) == 0) (void)unregister(n);
    }
    name_.clear();
    file_.reset();
    if (prepared_) GetParam().cleanup();
    prepared_ = false;
  }

  SyncIo sync() { return SyncIo{*desc_, ch_}; }
  bool data() const { return GetParam().stores_data; }
  uint64_t blocks() const { return desc_->geometry().num_blocks; }

  std::unique_ptr<testing::TempFile> file_;
  std::string name_;
  std::unique_ptr<BdevDesc> desc_;
  BdevChannel* ch_ = nullptr;
  uint32_t bs_ = 512;
  bool prepared_ = false;  // GetParam().prepare ran; cleanup is due
};

TEST_P(Conformance, GeometryIsSane) {
  const Geometry& g = desc_->geometry();
  EXPECT_GE(g.block_size, 512u);
  EXPECT_EQ(g.block_size & (g.block_size - 1), 0u);
  EXPECT_GT(g.num_blocks, 0u);
  EXPECT_GE(g.queue_depth, 1u);
  EXPECT_TRUE(g.supports(IoType::read));
  EXPECT_TRUE(g.supports(IoType::write));
  EXPECT_TRUE(g.supports(IoType::flush));
}

TEST_P(Conformance, ReadAfterWrite) {
  for (uint64_t lba : {uint64_t{0}, blocks() / 2 + 3, blocks() - 8}) {
    AlignedBuffer out(8 * bs_), in(8 * bs_);
    out.fill_pattern(lba);
    ASSERT_TRUE(sync().write(out.data(), lba, 8).ok());
    ASSERT_TRUE(sync().read(in.data(), lba, 8).ok());
    if (data()) {
      EXPECT_EQ(in, out) << "lba " << lba;
    }
  }
}

TEST_P(Conformance, VectoredIoWithDifferentSegmentation) {
  AlignedBuffer out(16 * bs_), in(16 * bs_);
  out.fill_pattern(77);
  iovec wv[3] = {{out.data(), 2 * bs_}, {out.data() + 2 * bs_, 9 * bs_}, {out.data() + 11 * bs_, 5 * bs_}};
  ASSERT_TRUE(sync().writev(wv, 3, 100, 16).ok());
  iovec rv[2] = {{in.data(), 13 * bs_}, {in.data() + 13 * bs_, 3 * bs_}};
  ASSERT_TRUE(sync().readv(rv, 2, 100, 16).ok());
  if (data()) {
    EXPECT_EQ(in, out);
  }
}

TEST_P(Conformance, LargeIoIsSplitAndCompletesOnce) {
  open_with(fmt::format("mt={}", 8 * 512));  // 8 blocks at 512, or one 4K block's worth x2
  ASSERT_NE(desc_->geometry().max_transfer_blocks, 0u);
  const uint64_t n = 256;
  AlignedBuffer out(n * bs_), in(n * bs_);
  out.fill_pattern(5);
  // Many small segments: children must be cut where their inline segment space runs out.
  std::vector<iovec> wv;
  for (uint64_t i = 0; i < n; ++i) wv.push_back({out.data() + i * bs_, bs_});
  int calls = 0;
  Errc result = Errc::io_error;
  auto cb = [](void* arg, Errc st) {
    auto* p = static_cast<std::pair<int*, Errc*>*>(arg);
    ++*p->first;
    *p->second = st;
  };
  std::pair<int*, Errc*> ctx{&calls, &result};
  ASSERT_TRUE(desc_->writev(ch_, wv.data(), static_cast<int>(wv.size()), 10, n, cb, &ctx).ok());
  ASSERT_TRUE(testing::poll_until(ch_, [&] { return calls > 0; }));
  for (int i = 0; i < 10; ++i) ch_->poll();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result, Errc::ok);
  ASSERT_TRUE(sync().read(in.data(), 10, n).ok());
  if (data()) {
    EXPECT_EQ(in, out);
  }
  EXPECT_GE(desc_->bdev().stats().splits.get(), 2u);
}

TEST_P(Conformance, FlushCompletes) {
  AlignedBuffer out(bs_);
  out.fill_pattern(1);
  ASSERT_TRUE(sync().write(out.data(), 1, 1).ok());
  EXPECT_TRUE(sync().flush().ok());
}

TEST_P(Conformance, WriteZeroesZeroesOnlyItsRange) {
  if (!desc_->geometry().supports(IoType::write_zeroes)) GTEST_SKIP() << "write_zeroes not supported";
  AlignedBuffer out(32 * bs_), in(32 * bs_);
  out.fill_pattern(9);
  ASSERT_TRUE(sync().write(out.data(), 64, 32).ok());
  ASSERT_TRUE(sync().write_zeroes(72, 8).ok());
  ASSERT_TRUE(sync().read(in.data(), 64, 32).ok());
  if (!data()) return;
  EXPECT_EQ(std::memcmp(in.data(), out.data(), 8 * bs_), 0);
  EXPECT_TRUE(in.is_zero(8 * bs_, 8 * bs_));
  EXPECT_EQ(std::memcmp(in.data() + 16 * bs_, out.data() + 16 * bs_, 16 * bs_), 0);
}

TEST_P(Conformance, UnmapKeepsNeighboursAndZeroesWhenPromised) {
  if (!desc_->geometry().supports(IoType::unmap)) GTEST_SKIP() << "unmap not supported";
  // 4 KiB-aligned range so file backends can punch whole filesystem blocks.
  const uint64_t per4k = 4096 / bs_ ? 4096 / bs_ : 1;
  const uint64_t start = 128 * per4k, len = 16 * per4k;
  AlignedBuffer out(len * 3 * bs_), in(len * 3 * bs_);
  out.fill_pattern(11);
  ASSERT_TRUE(sync().write(out.data(), start - len, 3 * len).ok());
  ASSERT_TRUE(sync().unmap(start, len).ok());
  ASSERT_TRUE(sync().read(in.data(), start - len, 3 * len).ok());
  if (!data()) return;
  EXPECT_EQ(std::memcmp(in.data(), out.data(), len * bs_), 0);
  EXPECT_EQ(std::memcmp(in.data() + 2 * len * bs_, out.data() + 2 * len * bs_, len * bs_), 0);
  if (desc_->geometry().unmap_zeroes) {
    EXPECT_TRUE(in.is_zero(len * bs_, len * bs_));
  }
}

TEST_P(Conformance, OutOfRangeAndMalformedRequestsAreRejected) {
  AlignedBuffer buf(8 * bs_);
  auto expect = [](Status st, Errc code) {
    EXPECT_EQ(st.code(), code) << st.to_string();
    EXPECT_FALSE(st.message().empty());
  };
  expect(desc_->read(ch_, buf.data(), blocks(), 1, nullptr, nullptr), Errc::out_of_range);
  expect(desc_->read(ch_, buf.data(), blocks() - 1, 2, nullptr, nullptr), Errc::out_of_range);
  expect(desc_->write(ch_, buf.data(), ~uint64_t{0}, 2, nullptr, nullptr), Errc::out_of_range);
  expect(desc_->read(ch_, buf.data(), 0, 0, nullptr, nullptr), Errc::invalid_argument);
  iovec short_iov{buf.data(), bs_};
  expect(desc_->readv(ch_, &short_iov, 1, 0, 2, nullptr, nullptr), Errc::invalid_argument);
  if (desc_->geometry().supports(IoType::unmap)) {
    expect(desc_->unmap(ch_, blocks() - 1, 4, nullptr, nullptr), Errc::out_of_range);
  }
  EXPECT_EQ(ch_->in_flight(), 0u);  // nothing was queued by a rejected request
}

TEST_P(Conformance, BuffersTheDeviceCannotTakeGoThroughABounceBuffer) {
  open_with(fmt::format("mt={}", 8 * 512));  // the bounced request is split as well
  const uint64_t n = 16;
  AlignedBuffer out(n * bs_ + 64), in(n * bs_ + 64);
  char* odd_out = out.data() + 1;  // misaligned for any device that asks for alignment
  char* odd_in = in.data() + 3;
  for (uint64_t i = 0; i < n * bs_; ++i) odd_out[i] = static_cast<char>(i * 7 + 1);
  // One misaligned buffer, then odd-length segments that add up to whole blocks.
  ASSERT_TRUE(sync().write(odd_out, 40, n).ok());
  iovec rv[3] = {{odd_in, 100}, {odd_in + 100, bs_ - 100 + 5}, {odd_in + bs_ + 5, (n - 1) * bs_ - 5}};
  ASSERT_TRUE(sync().readv(rv, 3, 40, n).ok());
  if (data()) {
    EXPECT_EQ(std::memcmp(odd_in, odd_out, n * bs_), 0);
  }
  AlignedBuffer back(n * bs_);
  ASSERT_TRUE(sync().read(back.data(), 40, n).ok());
  if (data()) {
    EXPECT_EQ(std::memcmp(back.data(), odd_out, n * bs_), 0);
  }
  // Aligned buffers are never copied; misaligned ones are counted where the device needs it.
  const uint64_t bounced = desc_->bdev().stats().bounced.get();
  if (desc_->geometry().buf_align > 1) {
    EXPECT_EQ(bounced, 2u);
  } else {
    EXPECT_EQ(bounced, 0u);
  }
  EXPECT_EQ(ch_->in_flight(), 0u);
}

TEST_P(Conformance, ReadOnlyHandleRefusesWrites) {
  OpenOptions ro;
  ro.write = false;
  auto d = open(name_, ro);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  AlignedBuffer buf(bs_);
  Status st = (*d)->write(ch_, buf.data(), 0, 1, nullptr, nullptr);
  EXPECT_EQ(st.code(), Errc::permission) << st.to_string();
  SyncIo ro_io{**d, ch_};
  EXPECT_TRUE(ro_io.read(buf.data(), 0, 1).ok());
}

TEST_P(Conformance, FullQueueIsBackPressureNotFailure) {
  const uint32_t qd = desc_->geometry().queue_depth;
  AlignedBuffer buf(bs_);
  std::atomic<uint32_t> done{0};
  auto cb = [](void* arg, Errc st) {
    EXPECT_EQ(st, Errc::ok);
    static_cast<std::atomic<uint32_t>*>(arg)->fetch_add(1);
  };
  uint32_t submitted = 0;
  Status st;
  while ((st = desc_->read(ch_, buf.data(), submitted % blocks(), 1, cb, &done)).ok()) ++submitted;
  EXPECT_EQ(st.code(), Errc::busy);
  EXPECT_EQ(submitted, qd);
  // A waiter is told when a slot frees up, and its resubmission succeeds.
  struct Retry {
    BdevDesc* desc;
    BdevChannel* ch;
    void* buf;
    std::atomic<uint32_t>* done;
    bool ran = false;
    bool ok = false;
  } retry{desc_.get(), ch_, buf.data(), &done};
  IoWaitEntry entry;
  entry.arg = &retry;
  entry.fn = [](void* arg) {
    auto* r = static_cast<Retry*>(arg);
    r->ran = true;
    r->ok = r->desc->read(r->ch, r->buf, 0, 1, [](void* a, Errc) { static_cast<std::atomic<uint32_t>*>(a)->fetch_add(1); },
                          r->done).ok();
  };
  ASSERT_TRUE(wait_for_room(ch_, &entry).ok());
  ASSERT_TRUE(testing::poll_until(ch_, [&] { return done.load() == qd + 1; }));
  EXPECT_TRUE(retry.ran);
  EXPECT_TRUE(retry.ok);
  EXPECT_GE(desc_->bdev().stats().busy.get(), 1u);
}

TEST_P(Conformance, ResetCompletesAfterOutstandingIo) {
  AlignedBuffer buf(4 * bs_);
  std::vector<int> order;
  auto push = [](void* arg, Errc) { static_cast<std::vector<int>*>(arg)->push_back(0); };
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(desc_->read(ch_, buf.data() + i * bs_, i, 1, push, &order).ok());
  ASSERT_TRUE(desc_->reset(ch_, [](void* arg, Errc st) {
    EXPECT_EQ(st, Errc::ok);
    static_cast<std::vector<int>*>(arg)->push_back(1);
  }, &order).ok());
  ASSERT_TRUE(testing::poll_until(ch_, [&] { return order.size() == 5; }));
  EXPECT_EQ(order.back(), 1);
}

TEST_P(Conformance, ChannelsOnManyThreads) {
  constexpr int kThreads = 4;
  constexpr uint64_t kPer = 64;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<BdevChannel*> seen(kThreads);
  std::latch all_hold_channels(kThreads);  // so no two threads can reuse one channel's memory
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto ch = desc_->get_channel();
      all_hold_channels.count_down();
      if (!ch.ok()) { ++failures; return; }
      seen[t] = *ch;
      all_hold_channels.wait();
      SyncIo io{*desc_, *ch};
      AlignedBuffer out(kPer * bs_), in(kPer * bs_);
      out.fill_pattern(1000 + t);
      uint64_t base = 1024 + t * kPer;
      for (uint64_t i = 0; i < kPer; i += 4)
        if (!io.write(out.data() + i * bs_, base + i, 4).ok()) ++failures;
      if (!io.read(in.data(), base, kPer).ok()) ++failures;
      if (data() && !(in == out)) ++failures;
      if (!desc_->put_channel(*ch).ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int a = 0; a < kThreads; ++a)
    for (int b = a + 1; b < kThreads; ++b) EXPECT_NE(seen[a], seen[b]);
  EXPECT_EQ(desc_->bdev().channel_count(), 1u);  // only the fixture's own remains
}

TEST_P(Conformance, StatsCountOpsAndBytes) {
  AlignedBuffer buf(4 * bs_);
  ASSERT_TRUE(sync().write(buf.data(), 0, 4).ok());
  ASSERT_TRUE(sync().read(buf.data(), 0, 4).ok());
  ASSERT_TRUE(sync().read(buf.data(), 4, 2).ok());
  IoStats st = desc_->bdev().stats();
  EXPECT_EQ(st.by_type[static_cast<int>(IoType::write)].ops.get(), 1u);
  EXPECT_EQ(st.by_type[static_cast<int>(IoType::read)].ops.get(), 2u);
  EXPECT_EQ(st.by_type[static_cast<int>(IoType::read)].bytes.get(), 6u * bs_);
  EXPECT_EQ(st.by_type[static_cast<int>(IoType::read)].latency_ticks.count(), 2u);
}

TEST_P(Conformance, HotRemoveNotifiesAndStopsIo) {
  int notified = 0;
  OpenOptions opts;
  opts.on_remove = [&] { ++notified; };
  auto d = open(name_, opts);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(unregister(name_).ok());
  EXPECT_EQ(notified, 1);
  AlignedBuffer buf(bs_);
  EXPECT_EQ((*d)->read(ch_, buf.data(), 0, 1, nullptr, nullptr).code(), Errc::aborted);
  EXPECT_EQ(open(name_).status().code(), Errc::not_found);
  name_.clear();  // already unregistered; the base of a stacked device is left to clean up
  d->reset();
  ASSERT_TRUE(desc_->put_channel(ch_).ok());
  ch_ = nullptr;
  desc_.reset();
  for (auto& n : list())
    if (n.find("_base") != std::string::npos) (void)unregister(n);
}

// SLUICE_CONFORMANCE_SPEC adds one more device, e.g. nvme:0000:00:04.0 in the QEMU guest lane
// (tests/integration/nvme_guest_test.sh); --gtest_filter='*/env' runs only that one.
std::vector<Backend> backends() {
  if (!added_backends().empty()) return added_backends();
  std::vector<Backend> all{Backend{"null", "null:64M", false}, Backend{"malloc", "malloc:64M", true},
                           Backend{"malloc4k", "malloc:64M?bs=4096", true}, Backend{"uring", "uring:{file}", true},
                           Backend{"aio", "aio:{file}", true}, Backend{"error_over_malloc", "error:malloc:64M", true},
                           Backend{"crashsim_over_malloc", "crashsim:malloc:64M", true}};
  if (const char* spec = std::getenv("SLUICE_CONFORMANCE_SPEC"); spec != nullptr && *spec != '\0')
    all.push_back(Backend{"env", spec, true});
  return all;
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(backends()),
                         [](const ::testing::TestParamInfo<Backend>& p) { return p.param.label; });

}  // namespace

bool add_conformance_backend(ConformanceBackend backend) {
  added_backends().push_back(std::move(backend));
  return true;
}

namespace {

TEST(Spec, BadSpecsAreClearErrors) {
  for (const char* spec : {"", "malloc", ":64M", "bogus:1G", "malloc:", "malloc:12Q", "malloc:64M?bs=1000",
                           "malloc:64M?nope=1", "malloc:64M?bs", "null:100", "uring:/nonexistent/file"}) {
    auto r = create(spec);
    EXPECT_FALSE(r.ok()) << spec;
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty()) << spec;
    }
  }
}

// A RAM disk is committed when it is made: one that memory cannot hold is refused with a
// message, not left to the OOM killer at first touch.
TEST(Spec, RamDiskBeyondMemoryIsRefused) {
  auto r = create("malloc:1024T");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  EXPECT_NE(r.status().message().find("machine's memory"), std::string::npos) << r.status().message();
  // A sparse one commits what is written, so it may be bigger than memory: one GiB more
  // than this machine has (not far more: TSan's shadow leaves less address space).
  const uint64_t over_gib = physical_memory_bytes() / (1ull << 30) + 1;
  EXPECT_FALSE(create(fmt::format("malloc:{}G", over_gib)).ok());
  auto sparse = create(fmt::format("malloc:{}G?sparse=1", over_gib));
  ASSERT_TRUE(sparse.ok()) << sparse.status().to_string();
  EXPECT_TRUE(unregister(*sparse).ok());
  EXPECT_FALSE(create("malloc:1M?sparse=yes").ok());
}

TEST(Registry, NamesAreUniqueAndExclusiveClaimsExclude) {
  auto a = create("malloc:1M", "conf_reg");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(create("malloc:1M", "conf_reg").status().code(), Errc::exists);
  OpenOptions excl;
  excl.claim = Claim::exclusive;
  {
    auto d = open("conf_reg", excl);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(open("conf_reg").status().code(), Errc::busy);
  }
  {
    auto shared = open("conf_reg");
    ASSERT_TRUE(shared.ok());
    EXPECT_EQ(open("conf_reg", excl).status().code(), Errc::busy);
  }
  EXPECT_TRUE(unregister("conf_reg").ok());
  EXPECT_EQ(unregister("conf_reg").code(), Errc::not_found);
}

}  // namespace
}  // namespace sluice::bdev
