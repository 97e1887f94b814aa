// The crashsim bdev proves its model: flushed writes never vanish or tear, unflushed ones
// vanish, survive or tear (only ever into a mix of their own old and new blocks), reads see
// the cache, power cuts at I/O boundaries stop everything with Errc::aborted.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/backend.h"  // Bdev::spec()
#include "bdev/bdev.h"
#include "bdev/crashsim.h"
#include "bdev/error_inject.h"

#include "aligned_buffer.h"
#include "bdev_handle.h"
#include "temp_file.h"

namespace sluice::bdev {
namespace {

constexpr uint64_t kGarbage = ~uint64_t{0};

using Handle = sluice::testing::BdevHandle;  // a device opened with this thread's channel
using sluice::testing::unique_name;

// Block contents that say which write put them there: (tag, lba, filler derived from both).
void fill_block(char* p, uint32_t bs, uint64_t tag, uint64_t lba) {
  std::memcpy(p, &tag, 8);
  std::memcpy(p + 8, &lba, 8);
  for (uint32_t i = 16; i < bs; ++i) p[i] = static_cast<char>((tag * 31 + lba * 7 + i) & 0xff);
}

// The tag of a block: 0 if it is all zeroes, kGarbage if it is neither zeroes nor a whole
// block some write made.
uint64_t tag_of(const char* p, uint32_t bs, uint64_t lba) {
  bool zero = std::all_of(p, p + bs, [](char c) { return c == 0; });
  if (zero) return 0;
  uint64_t tag;
  std::memcpy(&tag, p, 8);
  std::vector<char> want(bs);
  fill_block(want.data(), bs, tag, lba);
  return std::memcmp(want.data(), p, bs) == 0 ? tag : kGarbage;
}

Status write_tagged(Handle& h, uint64_t lba, uint64_t n, uint64_t tag) {
  const uint32_t bs = h.bs();
  testing::AlignedBuffer buf(n * bs);  // aligned for O_DIRECT bases
  for (uint64_t i = 0; i < n; ++i) fill_block(buf.data() + i * bs, bs, tag, lba + i);
  return h.io().write(buf.data(), lba, n);
}

std::vector<uint64_t> read_tags(Handle& h, uint64_t lba, uint64_t n, Status* status = nullptr) {
  const uint32_t bs = h.bs();
  testing::AlignedBuffer buf(n * bs);
  Status st = h.io().read(buf.data(), lba, n);
  if (status != nullptr) {
    *status = st;
  } else {
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  std::vector<uint64_t> tags(n);
  for (uint64_t i = 0; i < n; ++i) tags[i] = tag_of(buf.data() + i * bs, bs, lba + i);
  return tags;
}

// A crashsim device on a named malloc base, and the restart that exposes the image.
class CrashSimTest : public ::testing::Test {
 protected:
  void make(const std::string& base_spec = "malloc:1M") {
    drop();
    base_ = unique_name("csbase");
    name_ = unique_name("cs");
    auto created = create(base_spec, base_);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    auto cs = CrashSim::stack(base_, name_);
    ASSERT_TRUE(cs.ok()) << cs.status().to_string();
    cs_ = std::make_unique<CrashSim>(cs.value());
    h_ = std::make_unique<Handle>(name_);
  }
  void SetUp() override { make(); }
  void TearDown() override { drop(); }

  // Takes the crashsim device away (it writes its image into the base as it goes) and opens
  // the base: what a restarted system would find.
  Handle& restart() {
    h_.reset();
    EXPECT_TRUE(unregister(name_).ok());
    EXPECT_TRUE(cs_->counts().image_written);
    base_h_ = std::make_unique<Handle>(base_);
    return *base_h_;
  }
  void drop() {
    h_.reset();
    base_h_.reset();
    if (!name_.empty()) (void)unregister(name_);
    if (!base_.empty()) (void)unregister(base_);
    name_.clear();
    base_.clear();
  }

  std::string base_, name_;
  std::unique_ptr<CrashSim> cs_;
  std::unique_ptr<Handle> h_, base_h_;
};

TEST_F(CrashSimTest, HasTheBaseGeometryPlusFlushAndClaimsTheBase) {
  const Geometry& g = h_->desc->geometry();
  EXPECT_EQ(g.block_size, 512u);
  EXPECT_EQ(g.num_blocks, 2048u);
  EXPECT_TRUE(g.supports(IoType::flush));
  EXPECT_TRUE(g.unmap_zeroes);
  EXPECT_EQ(open(base_).status().code(), Errc::busy);
  EXPECT_EQ(cs_->name(), name_);
  EXPECT_EQ(cs_->base_name(), base_);
  EXPECT_TRUE(CrashSim::find(name_).ok());
  EXPECT_FALSE(CrashSim::find(base_).ok());
}

TEST_F(CrashSimTest, ReadsSeeTheCacheAndOverlapsResolvePerBlockInIssueOrder) {
  ASSERT_TRUE(write_tagged(*h_, 0, 8, 1).ok());   // [0, 8)
  ASSERT_TRUE(write_tagged(*h_, 4, 8, 2).ok());   // [4, 12)
  ASSERT_TRUE(write_tagged(*h_, 2, 1, 3).ok());   // [2, 3)
  ASSERT_TRUE(h_->io().write_zeroes(10, 1).ok()); // [10, 11)
  ASSERT_TRUE(h_->io().unmap(6, 1).ok());         // [6, 7)
  ASSERT_TRUE(write_tagged(*h_, 20, 4, 4).ok());  // [20, 24)
  const std::vector<uint64_t> want = {1, 1, 3, 1, 2, 2, 0, 2, 2, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4};
  EXPECT_EQ(read_tags(*h_, 0, 24), want);
  EXPECT_EQ(read_tags(*h_, 3, 5), std::vector<uint64_t>(want.begin() + 3, want.begin() + 8));
  EXPECT_EQ(cs_->pending_writes(), 6u);
  EXPECT_EQ(cs_->pending_bytes(), (8 + 8 + 1 + 4) * 512u);

  // A vectored read with more segments than a request carries inline, across cached and
  // uncached blocks.
  std::vector<char> buf(24 * 512);
  std::vector<iovec> iov;
  for (int i = 0; i < 48; ++i) iov.push_back({buf.data() + i * 256, 256});
  ASSERT_TRUE(h_->io().readv(iov.data(), static_cast<int>(iov.size()), 0, 24).ok());
  for (uint64_t i = 0; i < 24; ++i) EXPECT_EQ(tag_of(buf.data() + i * 512, 512, i), want[i]) << i;

  // Flushed, the same image comes from the base.
  ASSERT_TRUE(h_->io().flush().ok());
  EXPECT_EQ(cs_->pending_writes(), 0u);
  EXPECT_EQ(cs_->pending_bytes(), 0u);
  EXPECT_EQ(read_tags(*h_, 0, 24), want);
  ASSERT_TRUE(write_tagged(*h_, 5, 1, 5).ok());
  std::vector<uint64_t> want2 = want;
  want2[5] = 5;
  EXPECT_EQ(read_tags(*h_, 0, 24), want2);
  cs_->cut_power();
  EXPECT_EQ(read_tags(restart(), 0, 24).size(), 24u);
}

TEST_F(CrashSimTest, CleanShutdownWritesTheWholeCache) {
  ASSERT_TRUE(write_tagged(*h_, 0, 4, 7).ok());
  ASSERT_TRUE(write_tagged(*h_, 2, 4, 8).ok());
  EXPECT_EQ(read_tags(restart(), 0, 8), (std::vector<uint64_t>{7, 7, 8, 8, 8, 8, 0, 0}));
  EXPECT_FALSE(cs_->powered_off());
}

TEST_F(CrashSimTest, FlushedWritesNeverVanishOrTear) {
  for (uint64_t seed = 0; seed < 100; ++seed) {
    make();
    cs_->set_seed(seed);
    ASSERT_TRUE(write_tagged(*h_, 0, 8, 1).ok());
    ASSERT_TRUE(write_tagged(*h_, 8, 16, 2).ok());
    ASSERT_TRUE(write_tagged(*h_, 30, 1, 3).ok());
    ASSERT_TRUE(h_->io().flush().ok());
    ASSERT_TRUE(write_tagged(*h_, 4, 8, 4).ok());
    ASSERT_TRUE(write_tagged(*h_, 20, 20, 5).ok());
    ASSERT_TRUE(h_->io().write_zeroes(0, 2).ok());
    cs_->cut_power();
    CrashCounts c = cs_->counts();
    EXPECT_EQ(c.kept + c.lost + c.torn, 3u);
    EXPECT_EQ(c.flushed_writes, 3u);
    auto tags = read_tags(restart(), 0, 48);
    auto allowed = [](uint64_t b) -> std::vector<uint64_t> {
      if (b < 2) return {1, 0};
      if (b < 4) return {1};
      if (b < 8) return {1, 4};
      if (b < 12) return {2, 4};
      if (b < 20) return {2};
      if (b < 24) return {2, 5};
      if (b == 30) return {3, 5};
      if (b < 40) return {0, 5};
      return {0};
    };
    for (uint64_t b = 0; b < 48; ++b) {
      auto ok = allowed(b);
      EXPECT_NE(std::find(ok.begin(), ok.end(), tags[b]), ok.end()) << "seed " << seed << " block " << b << " tag " << tags[b];
    }
  }
}

TEST_F(CrashSimTest, UnflushedWritesVanishSurviveAndTearIntoOldAndNewBlocksOnly) {
  constexpr int kWrites = 6, kBlocks = 8;
  uint64_t kept = 0, lost = 0, torn = 0, scattered = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    make();
    cs_->set_seed(seed);
    for (int w = 0; w < kWrites; ++w) ASSERT_TRUE(write_tagged(*h_, w * 16, kBlocks, 100 + w).ok());  // old
    ASSERT_TRUE(h_->io().flush().ok());
    for (int w = 0; w < kWrites; ++w) ASSERT_TRUE(write_tagged(*h_, w * 16, kBlocks, 1 + w).ok());  // new
    cs_->cut_power();
    CrashCounts c = cs_->counts();
    Handle& base = restart();
    uint64_t k = 0, l = 0, t = 0;
    for (int w = 0; w < kWrites; ++w) {
      auto tags = read_tags(base, w * 16, 16);
      int fresh = 0;
      std::string shape;
      for (int b = 0; b < kBlocks; ++b) {
        ASSERT_TRUE(tags[b] == 100u + w || tags[b] == 1u + w) << "seed " << seed << " write " << w << " tag " << tags[b];
        fresh += tags[b] == 1u + w;
        shape += tags[b] == 1u + w ? 'N' : 'o';
      }
      for (int b = kBlocks; b < 16; ++b) ASSERT_EQ(tags[b], 0u);  // nothing outside the write
      if (fresh == kBlocks) {
        ++k;
      } else if (fresh == 0) {
        ++l;
      } else {
        ++t;
        // A torn write is not just a prefix (nor just a suffix) of its blocks.
        bool prefix = shape.find("oN") == std::string::npos;
        bool suffix = shape.find("No") == std::string::npos;
        if (!prefix && !suffix) ++scattered;
      }
    }
    EXPECT_EQ(c.kept, k) << "seed " << seed;
    EXPECT_EQ(c.lost, l) << "seed " << seed;
    EXPECT_EQ(c.torn, t) << "seed " << seed;
    kept += k;
    lost += l;
    torn += t;
  }
  EXPECT_GT(kept, 0u);
  EXPECT_GT(lost, 0u);
  EXPECT_GT(torn, 0u);
  EXPECT_GT(scattered, 0u);
}

TEST_F(CrashSimTest, SameSeedSameImage) {
  auto run = [&](uint64_t seed) {
    make();
    cs_->set_seed(seed);
    for (int w = 0; w < 10; ++w) EXPECT_TRUE(write_tagged(*h_, w * 4, 4, 1 + w).ok());
    cs_->cut_power();
    return read_tags(restart(), 0, 40);
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST_F(CrashSimTest, OutcomeRestrictions) {
  auto run = [&](uint32_t mask) {
    make();
    EXPECT_TRUE(cs_->set_outcomes(mask).ok());
    cs_->set_seed(3);
    for (int w = 0; w < 10; ++w) EXPECT_TRUE(write_tagged(*h_, w * 8, 4, 1 + w).ok());
    EXPECT_TRUE(write_tagged(*h_, 100, 1, 50).ok());  // one block: cannot tear
    cs_->cut_power();
    return std::make_pair(cs_->counts(), read_tags(restart(), 0, 101));
  };
  auto [keep, keep_img] = run(kCrashKeep);
  EXPECT_EQ(keep.kept, 11u);
  for (int w = 0; w < 10; ++w)
    for (int b = 0; b < 4; ++b) EXPECT_EQ(keep_img[w * 8 + b], 1u + w);
  EXPECT_EQ(keep_img[100], 50u);

  auto [lose, lose_img] = run(kCrashLose);
  EXPECT_EQ(lose.lost, 11u);
  EXPECT_TRUE(std::all_of(lose_img.begin(), lose_img.end(), [](uint64_t t) { return t == 0; }));

  auto [tear, tear_img] = run(kCrashTear);
  EXPECT_EQ(tear.torn, 10u);
  EXPECT_EQ(tear.lost, 1u);  // the one-block write
  for (int w = 0; w < 10; ++w) {
    int fresh = 0;
    for (int b = 0; b < 4; ++b) fresh += tear_img[w * 8 + b] == 1u + w;
    EXPECT_GT(fresh, 0);
    EXPECT_LT(fresh, 4);
  }
  EXPECT_EQ(tear_img[100], 0u);

  EXPECT_EQ(cs_->set_outcomes(0).code(), Errc::invalid_argument);
  EXPECT_EQ(cs_->set_outcomes(8).code(), Errc::invalid_argument);
}

TEST_F(CrashSimTest, TheTearUnitIsTheBlock) {
  make("malloc:1M?bs=4096");
  ASSERT_EQ(h_->bs(), 4096u);
  ASSERT_TRUE(cs_->set_outcomes(kCrashTear).ok());
  cs_->set_seed(11);
  ASSERT_TRUE(write_tagged(*h_, 0, 16, 1).ok());
  cs_->cut_power();
  auto tags = read_tags(restart(), 0, 16);  // tag_of checks each 4K block is whole
  int fresh = 0;
  for (auto t : tags) {
    EXPECT_TRUE(t == 0 || t == 1) << t;
    fresh += t == 1;
  }
  EXPECT_GT(fresh, 0);
  EXPECT_LT(fresh, 16);
}

// The workload of the boundary test: mutating steps are boundaries 1..8.
struct Step {
  IoType type;
  uint64_t lba, n, tag;
};
const std::vector<Step> kWorkload = {
    {IoType::write, 0, 4, 1},  {IoType::write, 2, 4, 2},      {IoType::read, 0, 8, 0},
    {IoType::flush, 0, 0, 0},  {IoType::write_zeroes, 1, 2, 0}, {IoType::unmap, 5, 1, 0},
    {IoType::read, 0, 8, 0},   {IoType::write, 10, 2, 3},     {IoType::flush, 0, 0, 0},
    {IoType::write, 0, 1, 4},
};

Status run_step(Handle& h, const Step& s) {
  switch (s.type) {
    case IoType::write: return write_tagged(h, s.lba, s.n, s.tag);
    case IoType::read: {
      Status st;
      (void)read_tags(h, s.lba, s.n, &st);
      return st;
    }
    case IoType::flush: return h.io().flush();
    case IoType::write_zeroes: return h.io().write_zeroes(s.lba, s.n);
    case IoType::unmap: return h.io().unmap(s.lba, s.n);
    case IoType::reset: return h.io().reset();
  }
  return Status::Ok();
}

// The image after the first `boundaries` mutating steps; with `durable_only`, only those a
// flush among them covered.
std::vector<uint64_t> model(uint64_t boundaries, bool durable_only) {
  std::vector<uint64_t> img(16, 0), durable(16, 0);
  uint64_t seen = 0;
  for (const Step& s : kWorkload) {
    if (s.type == IoType::read) continue;
    if (++seen > boundaries) break;
    if (s.type == IoType::flush) durable = img;
    for (uint64_t b = s.lba; b < s.lba + s.n; ++b) img[b] = s.type == IoType::write ? s.tag : 0;
  }
  return durable_only ? durable : img;
}

TEST_F(CrashSimTest, PowerCutAtEveryBoundary) {
  for (const Step& s : kWorkload) ASSERT_TRUE(run_step(*h_, s).ok());
  const uint64_t total = cs_->boundaries();
  ASSERT_EQ(total, 8u);

  for (uint32_t mask : {uint32_t{kCrashKeep}, uint32_t{kCrashLose}}) {
    for (uint64_t n = 1; n <= total; ++n) {
      make();
      ASSERT_TRUE(cs_->set_outcomes(mask).ok());
      ASSERT_TRUE(cs_->cut_power_at(n).ok());
      uint64_t seen = 0;
      for (const Step& s : kWorkload) {
        if (s.type != IoType::read) ++seen;
        Status st = run_step(*h_, s);
        if (seen < n) {
          EXPECT_TRUE(st.ok()) << "cut at " << n << ": " << st.to_string();
        } else {
          EXPECT_EQ(st.code(), Errc::aborted) << "cut at " << n << ", step type " << io_type_name(s.type);
        }
      }
      EXPECT_TRUE(cs_->powered_off());
      EXPECT_EQ(cs_->boundaries(), n - 1);
      EXPECT_EQ(read_tags(restart(), 0, 16), model(n - 1, mask == kCrashLose)) << "cut at " << n;
    }
  }
}

TEST_F(CrashSimTest, CountsBoundariesAndPendingWrites) {
  std::vector<char> buf(4 * 512, 'c');
  EXPECT_EQ(cs_->boundaries(), 0u);
  ASSERT_TRUE(h_->io().read(buf.data(), 0, 4).ok());
  EXPECT_EQ(cs_->boundaries(), 0u);  // reads are not boundaries
  ASSERT_TRUE(h_->io().write(buf.data(), 0, 4).ok());
  ASSERT_TRUE(h_->io().write_zeroes(8, 2).ok());
  ASSERT_TRUE(h_->io().unmap(16, 2).ok());
  ASSERT_TRUE(h_->io().reset().ok());
  CrashCounts c = cs_->counts();
  EXPECT_EQ(c.boundaries, 3u);
  EXPECT_EQ(c.pending_writes, 3u);
  EXPECT_EQ(c.pending_bytes, 4 * 512u);
  ASSERT_TRUE(h_->io().flush().ok());
  ASSERT_TRUE(h_->io().flush().ok());  // nothing left to flush, still a boundary
  c = cs_->counts();
  EXPECT_EQ(c.boundaries, 5u);
  EXPECT_EQ(c.pending_writes, 0u);
  EXPECT_EQ(c.flushes, 2u);
  EXPECT_EQ(c.flushed_writes, 3u);
  EXPECT_FALSE(c.powered_off);

  EXPECT_EQ(cs_->cut_power_at(5).code(), Errc::invalid_argument);  // already passed
  ASSERT_TRUE(cs_->cut_power_at(100).ok());
  ASSERT_TRUE(cs_->cut_power_at(0).ok());  // disarmed
  ASSERT_TRUE(h_->io().write(buf.data(), 0, 4).ok());
  cs_->cut_power();
  cs_->cut_power();  // idempotent
  c = cs_->counts();
  EXPECT_TRUE(c.powered_off);
  EXPECT_EQ(c.boundaries, 6u);
  EXPECT_EQ(c.pending_writes, 0u);
  EXPECT_EQ(c.kept + c.lost + c.torn, 1u);
}

TEST_F(CrashSimTest, AfterTheCutEverythingFailsWithAborted) {
  std::vector<char> buf(512, 'a');
  ASSERT_TRUE(h_->io().write(buf.data(), 0, 1).ok());
  cs_->cut_power();
  EXPECT_EQ(h_->io().read(buf.data(), 0, 1).code(), Errc::aborted);
  EXPECT_EQ(h_->io().write(buf.data(), 0, 1).code(), Errc::aborted);
  EXPECT_EQ(h_->io().flush().code(), Errc::aborted);
  EXPECT_EQ(h_->io().unmap(0, 1).code(), Errc::aborted);
  EXPECT_EQ(h_->io().write_zeroes(0, 1).code(), Errc::aborted);
  EXPECT_EQ(cs_->boundaries(), 1u);
}

// A write larger than the maximum transfer reaches the device as several requests.
TEST_F(CrashSimTest, SplitWritesAreSeveralBoundaries) {
  make("malloc:1M?mt=4096");
  ASSERT_EQ(h_->desc->geometry().max_transfer_blocks, 8u);
  ASSERT_TRUE(write_tagged(*h_, 0, 32, 1).ok());
  EXPECT_EQ(cs_->boundaries(), 4u);
  EXPECT_EQ(cs_->pending_writes(), 4u);
  EXPECT_EQ(read_tags(*h_, 0, 32), std::vector<uint64_t>(32, 1));
}

// A base with room for two requests: reads of many gaps and flushes wait for room and retry.
TEST_F(CrashSimTest, ABusyBaseIsRetried) {
  make("malloc:1M?qd=2");
  for (uint64_t b = 1; b < 32; b += 2) ASSERT_TRUE(write_tagged(*h_, b, 1, b).ok());
  std::vector<uint64_t> want(32, 0);
  for (uint64_t b = 1; b < 32; b += 2) want[b] = b;
  EXPECT_EQ(read_tags(*h_, 0, 32), want);  // 16 gaps read from the base
  ASSERT_TRUE(h_->io().flush().ok());
  EXPECT_EQ(read_tags(*h_, 0, 32), want);
  EXPECT_GT(find(base_)->stats().busy.get(), 0u);
}

// A cut while a flush is writing the cache to the base: what the flush already sent stays,
// the rest follows the outcome rules, and the flush fails with aborted.
TEST_F(CrashSimTest, CutWhileAFlushIsApplying) {
  constexpr uint64_t kWrites = 40;
  for (uint64_t i = 0; i < kWrites; ++i) ASSERT_TRUE(write_tagged(*h_, i, 1, i + 1).ok());
  ASSERT_TRUE(cs_->set_outcomes(kCrashLose).ok());
  struct Done {
    bool done = false;
    Errc status = Errc::ok;
  } done;
  ASSERT_TRUE(h_->desc
                  ->flush(h_->ch,
                          [](void* arg, Errc st) {
                            auto* d = static_cast<Done*>(arg);
                            d->status = st;
                            d->done = true;
                          },
                          &done)
                  .ok());
  for (int i = 0; i < 10 && !done.done; ++i) poll(h_->ch);
  ASSERT_FALSE(done.done);
  cs_->cut_power();
  for (int i = 0; i < 100000 && !done.done; ++i) poll(h_->ch);
  ASSERT_TRUE(done.done);
  EXPECT_EQ(done.status, Errc::aborted);
  CrashCounts c = cs_->counts();
  EXPECT_GT(c.destaged, 0u);
  EXPECT_LT(c.destaged, kWrites);
  EXPECT_EQ(c.kept, c.destaged);
  EXPECT_EQ(c.lost, kWrites - c.destaged);
  EXPECT_EQ(c.flushes, 0u);
  auto tags = read_tags(restart(), 0, kWrites);
  for (uint64_t i = 0; i < kWrites; ++i) EXPECT_EQ(tags[i], i < c.destaged ? i + 1 : 0) << i;
}

// Writers on several threads, a flusher on another: every write that completed before a
// successful flush was submitted survives a cut that loses everything else, and the image
// of each writer is exactly a prefix of its writes.
TEST_F(CrashSimTest, WritersAndFlusherOnSeveralThreads) {
  constexpr int kWriters = 3, kWrites = 300, kSlots = 32;
  ASSERT_TRUE(cs_->set_outcomes(kCrashLose).ok());
  std::atomic<uint64_t> completed[kWriters];
  for (auto& c : completed) c = 0;
  std::atomic<int> writers_left{kWriters};
  std::atomic<uint64_t> flushes_done{0};
  std::vector<uint64_t> durable(kWriters, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Handle h(name_);
      for (uint64_t i = 0; i < kWrites; ++i) {
        if (i % 25 == 0) {  // let a flush or two happen while this writer is mid-way
          uint64_t seen = flushes_done.load();
          auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
          while (flushes_done.load() < seen + 2 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        }
        uint64_t lba = w * 64 + i % kSlots, tag = (uint64_t(w) << 32) | (i + 1);
        Status st = write_tagged(h, lba, 1, tag);
        EXPECT_TRUE(st.ok()) << st.to_string();
        EXPECT_EQ(read_tags(h, lba, 1)[0], tag);  // reads see the newest write, whatever flushes run
        completed[w].store(i + 1, std::memory_order_release);
        if (w != 0 && i % 40 == 39) {  // flushes from several threads at once
          Status fst = h.io().flush();
          EXPECT_TRUE(fst.ok()) << fst.to_string();
        }
      }
      writers_left.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {
    Handle h(name_);
    while (writers_left.load() > 0) {
      uint64_t snap[kWriters];
      for (int w = 0; w < kWriters; ++w) snap[w] = completed[w].load(std::memory_order_acquire);
      Status st = h.io().flush();
      EXPECT_TRUE(st.ok()) << st.to_string();
      if (st.ok()) {
        for (int w = 0; w < kWriters; ++w) durable[w] = std::max(durable[w], snap[w]);
      }
      flushes_done.fetch_add(1);
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  cs_->cut_power();
  CrashCounts c = cs_->counts();
  EXPECT_GT(c.flushes, 0u);
  EXPECT_EQ(c.kept + c.torn, c.destaged);
  Handle& base = restart();
  for (int w = 0; w < kWriters; ++w) {
    auto tags = read_tags(base, w * 64, kSlots);
    // Some prefix of the writer's writes, at least `durable[w]` long, made this image.
    bool found = false;
    for (uint64_t p = durable[w]; p <= kWrites && !found; ++p) {
      bool match = true;
      for (uint64_t j = 0; j < kSlots && match; ++j) {
        uint64_t want = 0;
        for (uint64_t i = 0; i < p; ++i)
          if (i % kSlots == j) want = (uint64_t(w) << 32) | (i + 1);
        match = tags[j] == want;
      }
      found = match;
    }
    EXPECT_TRUE(found) << "writer " << w << " durable " << durable[w];
    EXPECT_GT(durable[w], 0u);  // the flusher made progress while this writer ran
  }
}

// The user above a failing base sees the failure; the cache keeps the writes and a later
// flush makes them durable.
TEST_F(CrashSimTest, FailedFlushKeepsTheCache) {
  drop();
  base_ = unique_name("csbase");
  std::string err = unique_name("cserr");
  name_ = unique_name("cs");
  ASSERT_TRUE(create("malloc:1M", base_).ok());
  auto inj = ErrorInjector::stack(base_, err);
  ASSERT_TRUE(inj.ok());
  auto cs = CrashSim::stack(err, name_);
  ASSERT_TRUE(cs.ok()) << cs.status().to_string();
  cs_ = std::make_unique<CrashSim>(cs.value());
  h_ = std::make_unique<Handle>(name_);

  ASSERT_TRUE(write_tagged(*h_, 0, 2, 1).ok());
  ASSERT_TRUE(write_tagged(*h_, 2, 2, 2).ok());
  ASSERT_TRUE(inj->set_rule(ErrorRule::nth(io_bit(IoType::write), 2)).ok());
  EXPECT_EQ(h_->io().flush().code(), Errc::io_error);
  EXPECT_EQ(cs_->pending_writes(), 2u);
  ASSERT_TRUE(inj->set_rule(ErrorRule::next(io_bit(IoType::flush), 1, Errc::io_error)).ok());
  EXPECT_EQ(h_->io().flush().code(), Errc::io_error);
  EXPECT_EQ(cs_->pending_writes(), 2u);
  EXPECT_EQ(read_tags(*h_, 0, 4), (std::vector<uint64_t>{1, 1, 2, 2}));
  ASSERT_TRUE(h_->io().flush().ok());
  EXPECT_EQ(cs_->pending_writes(), 0u);
  ASSERT_TRUE(cs_->set_outcomes(kCrashLose).ok());
  ASSERT_TRUE(write_tagged(*h_, 0, 4, 3).ok());
  cs_->cut_power();

  h_.reset();
  ASSERT_TRUE(unregister(name_).ok());
  {
    Handle e(err);
    EXPECT_EQ(read_tags(e, 0, 4), (std::vector<uint64_t>{1, 1, 2, 2}));
  }
  EXPECT_TRUE(unregister(err).ok());
}

// The way crash tests use it: on a file bdev (O_DIRECT alignment, a real flush below).
TEST_F(CrashSimTest, OverAUringFile) {
  drop();
  testing::TempFile file(1 << 20);
  ASSERT_FALSE(file.path().empty());
  base_ = unique_name("csuring");
  name_ = unique_name("cs");
  auto created = create("uring:" + file.path(), base_);
  if (!created.ok()) GTEST_SKIP() << "no uring bdev here: " << created.status().to_string();
  auto cs = CrashSim::stack(base_, name_);
  ASSERT_TRUE(cs.ok()) << cs.status().to_string();
  cs_ = std::make_unique<CrashSim>(cs.value());
  h_ = std::make_unique<Handle>(name_);
  ASSERT_TRUE(cs_->set_outcomes(kCrashLose).ok());
  ASSERT_TRUE(write_tagged(*h_, 0, 8, 1).ok());
  ASSERT_TRUE(h_->io().flush().ok());
  ASSERT_TRUE(write_tagged(*h_, 4, 8, 2).ok());
  ASSERT_TRUE(write_tagged(*h_, 20, 1, 3).ok());
  std::vector<uint64_t> cached = {1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0};
  EXPECT_EQ(read_tags(*h_, 0, 22), cached);
  cs_->cut_power();
  std::vector<uint64_t> image(22, 0);
  for (int b = 0; b < 8; ++b) image[b] = 1;
  EXPECT_EQ(read_tags(restart(), 0, 22), image);
  drop();
}

TEST(CrashSimSpec, MadeFromASpec) {
  std::string name = unique_name("csspec");
  auto created = create("crashsim:malloc:1M?bs=4096", name);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  auto cs = CrashSim::find(name);
  ASSERT_TRUE(cs.ok()) << cs.status().to_string();
  EXPECT_EQ(cs->base_name(), name + "_base");
  EXPECT_EQ(find(name)->spec(), "crashsim:malloc:1M");
  {
    Handle h(name);
    EXPECT_EQ(h.bs(), 4096u);
    EXPECT_EQ(h.desc->geometry().num_blocks, 256u);
    ASSERT_TRUE(write_tagged(h, 3, 2, 9).ok());
    EXPECT_EQ(read_tags(h, 3, 2), (std::vector<uint64_t>{9, 9}));
    cs->cut_power();
    Status st;
    (void)read_tags(h, 3, 2, &st);
    EXPECT_EQ(st.code(), Errc::aborted);
  }
  ASSERT_TRUE(unregister(name).ok());
  EXPECT_EQ(find(name + "_base"), nullptr);
  EXPECT_FALSE(create("crashsim:nope:1M", unique_name("csspec")).ok());
}

TEST_F(CrashSimTest, HotRemoveOfTheBaseRemovesTheCrashsimBdev) {
  std::atomic<bool> removed{false};
  OpenOptions opts;
  opts.on_remove = [&] { removed = true; };
  Handle h(name_, opts);
  ASSERT_TRUE(unregister(base_).ok());
  EXPECT_TRUE(removed.load());
  EXPECT_EQ(find(name_), nullptr);
  Status st;
  (void)read_tags(h, 0, 1, &st);
  EXPECT_EQ(st.code(), Errc::aborted);
}

}  // namespace
}  // namespace sluice::bdev
