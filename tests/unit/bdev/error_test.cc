// The error bdev: injection by type, count and probability, dead mode, counters, and what
// the user above sees (a status, never a crash).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/backend.h"  // Bdev::spec()
#include "bdev/bdev.h"
#include "bdev/error_inject.h"

#include "bdev_handle.h"

namespace sluice::bdev {
namespace {


using Handle = sluice::testing::BdevHandle;  // a device opened with this thread's channel
using sluice::testing::unique_name;

std::vector<char> block_of(char c, size_t n = 512) { return std::vector<char>(n, c); }

class ErrorBdevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = unique_name("errbase");
    name_ = unique_name("err");
    ASSERT_TRUE(create("malloc:1M", base_).ok());
    auto inj = ErrorInjector::stack(base_, name_);
    ASSERT_TRUE(inj.ok()) << inj.status().to_string();
    inj_ = std::make_unique<ErrorInjector>(inj.value());
    h_ = std::make_unique<Handle>(name_);
  }
  void TearDown() override {
    h_.reset();
    (void)unregister(name_);
    (void)unregister(base_);
  }

  Status write(uint64_t lba, char c) {
    auto buf = block_of(c);
    return h_->io().write(buf.data(), lba, 1);
  }
  Status read(uint64_t lba, std::vector<char>& out) {
    out.assign(512, 0);
    return h_->io().read(out.data(), lba, 1);
  }

  std::string base_, name_;
  std::unique_ptr<ErrorInjector> inj_;
  std::unique_ptr<Handle> h_;
};

TEST_F(ErrorBdevTest, PassesEverythingThroughWithoutARule) {
  const Geometry& g = h_->desc->geometry();
  EXPECT_EQ(g.block_size, 512u);
  EXPECT_EQ(g.num_blocks, 2048u);
  ASSERT_TRUE(write(7, 'a').ok());
  std::vector<char> got;
  ASSERT_TRUE(read(7, got).ok());
  EXPECT_EQ(got, block_of('a'));
  EXPECT_TRUE(h_->io().flush().ok());
  EXPECT_TRUE(h_->io().unmap(7, 1).ok());
  EXPECT_TRUE(h_->io().write_zeroes(8, 4).ok());
  EXPECT_TRUE(h_->io().reset().ok());
  EXPECT_EQ(inj_->counts().injected, 0u);

  // The data went to the base.
  h_.reset();
  ASSERT_TRUE(unregister(name_).ok());
  Handle base(base_);
  ASSERT_TRUE(base.io().read(got.data(), 7, 1).ok());
  EXPECT_EQ(got, block_of(0));
}

TEST_F(ErrorBdevTest, ClaimsTheBaseExclusively) {
  auto d = open(base_);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Errc::busy);
}

TEST_F(ErrorBdevTest, FailsByType) {
  ASSERT_TRUE(inj_->set_rule(ErrorRule::next(io_bit(IoType::write) | io_bit(IoType::flush), ErrorRule::kUnlimited)).ok());
  std::vector<char> got;
  for (int i = 0; i < 5; ++i) {
    Status st = write(i, 'x');
    EXPECT_EQ(st.code(), Errc::io_error);
    EXPECT_TRUE(read(i, got).ok());
    EXPECT_EQ(got, block_of(0));  // the failed write never reached the base
  }
  EXPECT_EQ(h_->io().flush().code(), Errc::io_error);
  EXPECT_TRUE(h_->io().write_zeroes(0, 1).ok());
  EXPECT_TRUE(h_->io().unmap(0, 1).ok());
  ErrorCounts c = inj_->counts();
  EXPECT_EQ(c.injected, 6u);
  EXPECT_EQ(c.by_type[static_cast<int>(IoType::write)], 5u);
  EXPECT_EQ(c.by_type[static_cast<int>(IoType::flush)], 1u);
  EXPECT_EQ(c.by_type[static_cast<int>(IoType::read)], 0u);

  inj_->clear_rule();
  EXPECT_TRUE(write(0, 'y').ok());
  EXPECT_EQ(inj_->counts().injected, 6u);
}

TEST_F(ErrorBdevTest, FailsTheNthMatchingRequestOnce) {
  ASSERT_TRUE(inj_->set_rule(ErrorRule::nth(io_bit(IoType::write), 3)).ok());
  std::vector<char> got;
  for (int i = 1; i <= 6; ++i) {
    EXPECT_TRUE(read(0, got).ok());  // reads do not match and do not count
    Status st = write(i, 'n');
    if (i == 3) {
      EXPECT_EQ(st.code(), Errc::io_error) << i;
    } else {
      EXPECT_TRUE(st.ok()) << i;
    }
  }
  ErrorCounts c = inj_->counts();
  EXPECT_EQ(c.injected, 1u);
  EXPECT_EQ(c.rule_left, 0u);
}

TEST_F(ErrorBdevTest, FailsTheNextKWithTheChosenStatus) {
  ASSERT_TRUE(inj_->set_rule(ErrorRule::next(io_bit(IoType::read), 2, Errc::corrupt)).ok());
  std::vector<char> got;
  EXPECT_EQ(read(0, got).code(), Errc::corrupt);
  EXPECT_TRUE(write(0, 'w').ok());
  EXPECT_EQ(read(0, got).code(), Errc::corrupt);
  EXPECT_TRUE(read(0, got).ok());
  EXPECT_EQ(got, block_of('w'));
  EXPECT_EQ(inj_->counts().by_type[static_cast<int>(IoType::read)], 2u);
}

TEST_F(ErrorBdevTest, SkipAndCountCombine) {
  ErrorRule r;
  r.types = io_bit(IoType::write);
  r.skip = 2;
  r.count = 3;
  ASSERT_TRUE(inj_->set_rule(r).ok());
  std::string pattern;
  for (int i = 0; i < 8; ++i) pattern += write(i, 'c').ok() ? '.' : 'X';
  EXPECT_EQ(pattern, "..XXX...");
}

TEST_F(ErrorBdevTest, ProbabilityIsDeterministicForASeed) {
  auto run = [&](uint64_t seed) {
    EXPECT_TRUE(inj_->set_rule(ErrorRule::random(io_bit(IoType::write), 0.3, seed)).ok());
    std::string pattern;
    std::vector<char> got;
    for (int i = 0; i < 400; ++i) {
      EXPECT_TRUE(read(i % 16, got).ok());  // non-matching requests do not draw
      pattern += write(i % 16, 'p').ok() ? '.' : 'X';
    }
    return pattern;
  };
  std::string a = run(42), b = run(42), c = run(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  auto failures = std::count(a.begin(), a.end(), 'X');
  EXPECT_GT(failures, 400 * 0.15);
  EXPECT_LT(failures, 400 * 0.45);
  ASSERT_TRUE(inj_->set_rule(ErrorRule::random(io_bit(IoType::write), 0.0, 1)).ok());
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(write(0, 'z').ok());
  ASSERT_TRUE(inj_->set_rule(ErrorRule::random(io_bit(IoType::write), 1.0, 1)).ok());
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(write(0, 'z').ok());
}

TEST_F(ErrorBdevTest, DeadModeFailsEverythingUntilRevived) {
  ASSERT_TRUE(write(1, 'd').ok());
  ASSERT_TRUE(inj_->set_dead().ok());
  EXPECT_TRUE(inj_->dead());
  std::vector<char> got;
  EXPECT_EQ(read(1, got).code(), Errc::io_error);
  EXPECT_EQ(write(1, 'e').code(), Errc::io_error);
  EXPECT_EQ(h_->io().flush().code(), Errc::io_error);
  EXPECT_EQ(h_->io().unmap(0, 1).code(), Errc::io_error);
  EXPECT_EQ(h_->io().write_zeroes(0, 1).code(), Errc::io_error);
  ErrorCounts c = inj_->counts();
  EXPECT_EQ(c.injected, 5u);
  for (int t = 0; t < kIoTypes; ++t) {
    if (t != static_cast<int>(IoType::reset)) {
      EXPECT_EQ(c.by_type[t], 1u) << io_type_name(static_cast<IoType>(t));
    }
  }

  ASSERT_TRUE(inj_->set_dead(Errc::aborted).ok());
  EXPECT_EQ(read(1, got).code(), Errc::aborted);

  inj_->revive();
  EXPECT_FALSE(inj_->dead());
  ASSERT_TRUE(read(1, got).ok());
  EXPECT_EQ(got, block_of('d'));  // nothing reached the base while dead
  inj_->reset_counts();
  EXPECT_EQ(inj_->counts().injected, 0u);
}

TEST_F(ErrorBdevTest, AfterIoFailsTheCompletionButTheDataLands) {
  ErrorRule r = ErrorRule::next(io_bit(IoType::write), 1);
  r.after_io = true;
  ASSERT_TRUE(inj_->set_rule(r).ok());
  EXPECT_EQ(write(5, 'l').code(), Errc::io_error);
  std::vector<char> got;
  ASSERT_TRUE(read(5, got).ok());
  EXPECT_EQ(got, block_of('l'));
}

TEST_F(ErrorBdevTest, RejectsBadRules) {
  ErrorRule r;
  r.status = Errc::ok;
  EXPECT_EQ(inj_->set_rule(r).code(), Errc::invalid_argument);
  r = ErrorRule::random(io_bit(IoType::read), 1.5, 0);
  EXPECT_EQ(inj_->set_rule(r).code(), Errc::invalid_argument);
  r = ErrorRule::next(0, 1);
  EXPECT_EQ(inj_->set_rule(r).code(), Errc::invalid_argument);
  EXPECT_EQ(inj_->set_dead(Errc::ok).code(), Errc::invalid_argument);
  EXPECT_FALSE(ErrorInjector::find(base_).ok());  // a malloc bdev is not an error bdev
  EXPECT_EQ(ErrorInjector::find("no-such-bdev").status().code(), Errc::not_found);
  EXPECT_EQ(ErrorInjector::stack(base_, "another").status().code(), Errc::busy);  // already claimed
}

TEST_F(ErrorBdevTest, HotRemoveOfTheBaseRemovesTheErrorBdev) {
  h_.reset();
  std::atomic<bool> removed{false};
  OpenOptions opts;
  opts.on_remove = [&] { removed = true; };
  Handle h(name_, opts);
  ASSERT_TRUE(unregister(base_).ok());
  EXPECT_TRUE(removed.load());
  EXPECT_EQ(find(name_), nullptr);
  std::vector<char> got(512);
  EXPECT_EQ(h.io().read(got.data(), 0, 1).code(), Errc::aborted);
}

// A split request whose piece fails reports the failure as a whole; the user sees a status.
TEST(ErrorBdevSpec, SplitRequestWithAFailingPieceFailsAsAWhole) {
  std::string name = unique_name("errspec");
  auto created = create("error:malloc:1M?mt=4096", name);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  EXPECT_NE(find(name + "_base"), nullptr);
  auto inj = ErrorInjector::find(name);
  ASSERT_TRUE(inj.ok()) << inj.status().to_string();
  {
    Handle h(name);
    EXPECT_EQ(h.desc->geometry().max_transfer_blocks, 8u);
    EXPECT_EQ(find(name)->spec(), "error:malloc:1M");
    ASSERT_TRUE(inj->set_rule(ErrorRule::nth(io_bit(IoType::write), 2)).ok());
    std::vector<char> buf(32 * 512, 's');
    EXPECT_EQ(h.io().write(buf.data(), 0, 32).code(), Errc::io_error);
    EXPECT_EQ(inj->counts().injected, 1u);
    EXPECT_TRUE(h.io().write(buf.data(), 0, 32).ok());
    std::vector<char> got(32 * 512);
    EXPECT_TRUE(h.io().read(got.data(), 0, 32).ok());
    EXPECT_EQ(got, buf);
  }
  ASSERT_TRUE(unregister(name).ok());
  EXPECT_EQ(find(name + "_base"), nullptr);  // the owned base goes with it
  // The name can be used again.
  ASSERT_TRUE(create("error:null:1M", name).ok());
  EXPECT_TRUE(unregister(name).ok());
}

// Split pieces outnumber the base's queue: the error bdev waits for room and retries.
TEST(ErrorBdevSpec, ABusyBaseIsRetried) {
  std::string name = unique_name("errbusy");
  ASSERT_TRUE(create("error:malloc:1M?qd=2&mt=4096", name).ok());
  {
    Handle h(name);
    std::vector<char> buf(64 * 512), got(64 * 512);
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i * 7 + 3);
    EXPECT_TRUE(h.io().write(buf.data(), 0, 64).ok());
    EXPECT_TRUE(h.io().read(got.data(), 0, 64).ok());
    EXPECT_EQ(got, buf);
    EXPECT_GT(find(name + "_base")->stats().busy.get(), 0u);
  }
  EXPECT_TRUE(unregister(name).ok());
}

TEST(ErrorBdevSpec, BadNestedSpecIsAnError) {
  auto r = create("error:bogus:1M", unique_name("errbad"));
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  EXPECT_FALSE(create("error:malloc:1M?zz=1", unique_name("errbad")).ok());
}

// The control path changes rules while other threads do I/O; TSan checks the data path.
TEST_F(ErrorBdevTest, ControlRacesWithIoOnOtherThreads) {
  constexpr int kThreads = 3, kOps = 2000;
  std::atomic<uint64_t> failed{0};
  std::atomic<bool> go{false};
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Handle h(name_);
      auto buf = block_of(static_cast<char>('a' + t));
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kOps; ++i) {
        Status st = (i % 2) ? h.io().write(buf.data(), t * 16 + i % 16, 1) : h.io().read(buf.data(), t * 16, 1);
        if (!st.ok()) failed.fetch_add(1);
        EXPECT_TRUE(st.ok() || st.code() == Errc::io_error || st.code() == Errc::corrupt) << st.to_string();
      }
      running.fetch_sub(1);
    });
  }
  go = true;
  for (int i = 0; running.load() > 0 && i < 1000000; ++i) {
    switch (i % 4) {
      case 0: EXPECT_TRUE(inj_->set_rule(ErrorRule::random(kAllIoTypes, 0.2, i)).ok()); break;
      case 1: EXPECT_TRUE(inj_->set_rule(ErrorRule::next(io_bit(IoType::write), 5, Errc::corrupt)).ok()); break;
      case 2: EXPECT_TRUE(inj_->set_dead().ok()); break;
      case 3:
        inj_->revive();
        inj_->clear_rule();
        break;
    }
    (void)inj_->counts();
    std::this_thread::yield();
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(inj_->counts().injected, failed.load());
}

}  // namespace
}  // namespace sluice::bdev
