// Completion wake-up of the kernel-I/O backends (uring, aio): a channel with requests in
// flight can be armed, its wake descriptor turns readable when a completion is ready, and a
// reactor with I/O in flight sleeps on it instead of spinning and still completes everything.
//
// The target is a file of real data on $TMPDIR (or /tmp): O_DIRECT reads of written blocks
// go to the device, so each takes a device round trip (holes would complete inline).
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "thread/thread.h"

#include "aligned_buffer.h"
#include "bdev_handle.h"
#include "temp_file.h"

namespace sluice::bdev {
namespace {
using sluice::testing::AlignedBuffer;
using sluice::testing::TempFile;

constexpr uint64_t kFileBytes = 8 << 20;

// Fills the file with a pattern through the page cache and makes it durable, so that every
// block is allocated and written.
void fill_file(const std::string& path, AlignedBuffer& data) {
  data.fill_pattern(7);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(fdatasync(fd), 0);
  close(fd);
}

class Wake : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(file_.path().empty());
    ASSERT_NO_FATAL_FAILURE(fill_file(file_.path(), content_));
    auto name = create(GetParam() + ":" + file_.path());
    ASSERT_TRUE(name.ok()) << name.status().to_string();
    name_ = *name;
  }
  void TearDown() override {
    if (!name_.empty()) {
      EXPECT_TRUE(unregister(name_).ok());
    }
  }

  TempFile file_{kFileBytes};
  AlignedBuffer content_{kFileBytes};
  std::string name_;
};

struct Done {
  int count = 0;
  Errc status = Errc::ok;
};
void on_done(void* arg, Errc st) {
  auto* d = static_cast<Done*>(arg);
  ++d->count;
  if (st != Errc::ok) d->status = st;
}

// 64 reads, QD1, each waited for by `wait_step` (called until the read completes, at most
// 10 s, returning true when it slept) and checked against the file's bytes. Returns how many
// steps slept: device reads take far longer than arming, so some must have.
template <typename WaitStep>
int read_each_block(BdevDesc* desc, BdevChannel* channel, AlignedBuffer& content, WaitStep wait_step) {
  const uint32_t bs = desc->geometry().block_size;
  AlignedBuffer buf(4096);
  int sleeps = 0;
  for (int i = 0; i < 64; ++i) {
    const uint64_t offset = (static_cast<uint64_t>(i) * 37 % (kFileBytes / 4096)) * 4096;
    Done done;
    EXPECT_TRUE(desc->read(channel, buf.data(), offset / bs, 4096 / bs, on_done, &done).ok());
    const uint64_t deadline = clock::now_ns() + 10'000'000'000ull;
    while (done.count == 0 && clock::now_ns() < deadline) sleeps += wait_step(done) ? 1 : 0;
    EXPECT_EQ(done.count, 1) << "read " << i;
    EXPECT_EQ(done.status, Errc::ok) << "read " << i;
    if (done.count != 1 || std::memcmp(buf.data(), content.data() + offset, 4096) != 0) {
      ADD_FAILURE() << "read " << i << " did not bring the file's bytes";
      break;
    }
  }
  return sleeps;
}

// Poll, and whenever the channel agrees to sleep, the wake descriptor must turn readable (a
// lost wakeup fails here after 5 s instead of hanging); then the poll reaps the read.
TEST_P(Wake, WakeFdFiresForEveryCompletionItWasArmedFor) {
  auto desc = open(name_);
  ASSERT_TRUE(desc.ok());
  auto ch = (*desc)->get_channel();
  ASSERT_TRUE(ch.ok());
  BdevChannel* channel = *ch;
  ASSERT_GE(channel->wake_fd(), 0) << GetParam() << " offers no wake descriptor";
  const int sleeps = read_each_block(desc->get(), channel, content_, [&](const Done& done) {
    if (poll(channel) > 0 || done.count > 0 || !channel->prepare_sleep()) return false;
    pollfd p{channel->wake_fd(), POLLIN, 0};
    const int rc = ::poll(&p, 1, 5000);
    channel->finish_sleep(rc > 0);
    EXPECT_EQ(rc, 1) << "armed, but no wakeup within 5 s";
    return true;
  });
  EXPECT_GT(sleeps, 0);
  EXPECT_TRUE((*desc)->put_channel(channel).ok());
}

// A thread that is not a reactor (a RocksDB thread reading SluiceFS) waiting on its one busy
// channel: sleep_on_thread_channels() sleeps (in the kernel where the backend can: uring's
// submit-and-wait, which also submits the queued read) and every read completes. There is no
// poll() before the first sleep: the read is still queued, and the sleep must submit it (or
// refuse to sleep) rather than wait for a completion that cannot come.
TEST_P(Wake, ForeignThreadSleepsUntilEachReadCompletes) {
  auto desc = open(name_);
  ASSERT_TRUE(desc.ok());
  auto ch = (*desc)->get_channel();
  ASSERT_TRUE(ch.ok());
  BdevChannel* channel = *ch;
  const int sleeps = read_each_block(desc->get(), channel, content_, [&](const Done&) {
    const bool slept = thread::sleep_on_thread_channels(5'000'000'000ull);
    poll(channel);
    return slept;
  });
  EXPECT_GT(sleeps, 0);
  EXPECT_TRUE((*desc)->put_channel(channel).ok());
}

// With nothing in flight the in-kernel wait refuses at once: only its timer would end it
// (a caller bounds it loosely, trusting the completion of a request the kernel holds).
TEST_P(Wake, KernelWaitRefusesWithNothingInFlight) {
  auto desc = open(name_);
  ASSERT_TRUE(desc.ok());
  auto ch = (*desc)->get_channel();
  ASSERT_TRUE(ch.ok());
  BdevChannel* channel = *ch;
  EXPECT_FALSE(channel->wait_in_kernel(60'000'000'000ull));
  // With a read in flight it waits for that read (as long as it takes, within the bound).
  AlignedBuffer buf(4096);
  Done done;
  ASSERT_TRUE((*desc)->read(channel, buf.data(), 0, 4096 / (*desc)->geometry().block_size, on_done, &done).ok());
  (void)channel->wait_in_kernel(60'000'000'000ull);
  ASSERT_TRUE(testing::poll_until(channel, [&] { return done.count == 1; }));
  EXPECT_EQ(done.status, Errc::ok);
  EXPECT_FALSE(channel->wait_in_kernel(60'000'000'000ull));
  EXPECT_TRUE((*desc)->put_channel(channel).ok());
}

// A completion that arrived while nobody polled must stop the channel from arming.
TEST_P(Wake, ReadyCompletionRefusesToArm) {
  auto desc = open(name_);
  ASSERT_TRUE(desc.ok());
  auto ch = (*desc)->get_channel();
  ASSERT_TRUE(ch.ok());
  BdevChannel* channel = *ch;
  const uint32_t bs = (*desc)->geometry().block_size;
  AlignedBuffer buf(4096);
  int exercised = 0;
  for (int attempt = 0; attempt < 20 && exercised < 3; ++attempt) {
    Done done;
    ASSERT_TRUE((*desc)->read(channel, buf.data(), 0, 4096 / bs, on_done, &done).ok());
    poll(channel);  // hands the read to the kernel
    if (done.count == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // long enough for it to complete
      if (!channel->prepare_sleep()) {
        ++exercised;
      } else {
        // Not complete after 50 ms (a very slow device): the wakeup must still come.
        pollfd p{channel->wake_fd(), POLLIN, 0};
        const int rc = ::poll(&p, 1, 5000);
        channel->finish_sleep(rc > 0);
        ASSERT_EQ(rc, 1);
      }
    }
    ASSERT_TRUE(testing::poll_until(channel, [&] { return done.count == 1; }));
    EXPECT_EQ(done.status, Errc::ok);
  }
  EXPECT_GT(exercised, 0) << "no read was still unreaped after 50 ms";
  EXPECT_TRUE((*desc)->put_channel(channel).ok());
}

// A reactor keeps QD4 reads of 256 KiB in flight for a while: with io_spin 0 it sleeps
// whenever a poll finds nothing, so nearly every round of its loop that found no work ends in
// a sleep (a spinning reactor goes round thousands of times per read), and every request
// completes. Counted on the reactor's own statistics, not on CPU time.
TEST_P(Wake, ReactorSleepsWhileReadsAreInFlightAndCompletesThemAll) {
  constexpr uint32_t kDepth = 4;
  constexpr uint32_t kIoBytes = 256 << 10;

  struct Driver {
    BdevDesc* desc = nullptr;
    BdevChannel* ch = nullptr;
    uint32_t bs = 512;
    std::vector<std::unique_ptr<AlignedBuffer>> bufs;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> submitted{0}, completed{0}, errors{0};
    uint64_t next = 0;

    static void done(void* arg, Errc st) {
      auto* slot = static_cast<std::pair<Driver*, AlignedBuffer*>*>(arg);
      Driver& d = *slot->first;
      d.completed.fetch_add(1);
      if (st != Errc::ok) d.errors.fetch_add(1);
      if (!d.stop.load()) d.issue(slot);
    }
    void issue(std::pair<Driver*, AlignedBuffer*>* slot) {
      const uint64_t offset = (next++ * 5 % (kFileBytes / kIoBytes)) * kIoBytes;
      Status st = desc->read(ch, slot->second->data(), offset / bs, kIoBytes / bs, done, slot);
      if (st.ok()) {
        submitted.fetch_add(1);
      } else {
        errors.fetch_add(1);
      }
    }
  };

  auto desc = open(name_);
  ASSERT_TRUE(desc.ok());
  Driver driver;
  driver.desc = desc->get();
  driver.bs = (*desc)->geometry().block_size;
  std::vector<std::pair<Driver*, AlignedBuffer*>> slots;
  for (uint32_t i = 0; i < kDepth; ++i) driver.bufs.push_back(std::make_unique<AlignedBuffer>(kIoBytes));
  for (auto& b : driver.bufs) slots.emplace_back(&driver, b.get());

  thread::AppOptions options;
  options.cores = "0";
  options.io_spin = std::chrono::microseconds(0);
  thread::App app(options);
  ASSERT_TRUE(app.start().ok());
  // Runs fn on the reactor and waits for it (bounded).
  auto on_reactor = [](auto fn) {
    std::atomic<bool> ran{false};
    EXPECT_TRUE(thread::send_message(0, thread::Task([&] {
                                       fn();
                                       ran = true;
                                     }))
                    .ok());
    const uint64_t deadline = clock::now_ns() + 10'000'000'000ull;
    while (!ran.load() && clock::now_ns() < deadline) std::this_thread::sleep_for(std::chrono::microseconds(200));
    EXPECT_TRUE(ran.load());
  };

  on_reactor([&] {
    auto ch = driver.desc->get_channel();
    ASSERT_TRUE(ch.ok());
    driver.ch = *ch;
    for (auto& s : slots) driver.issue(&s);
  });
  const thread::ReactorStats before = *thread::reactor_stats(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // time for many reads
  const thread::ReactorStats after = *thread::reactor_stats(0);
  const uint64_t sleeps = after.io_sleeps - before.io_sleeps;
  const uint64_t idle_rounds =
      (after.iterations - after.busy_iterations) - (before.iterations - before.busy_iterations);

  driver.stop = true;
  const uint64_t deadline = clock::now_ns() + 10'000'000'000ull;
  while (driver.completed.load() < driver.submitted.load() && clock::now_ns() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  on_reactor([&] { EXPECT_TRUE(driver.desc->put_channel(driver.ch).ok()); });
  EXPECT_TRUE(app.shutdown().ok());

  EXPECT_EQ(driver.errors.load(), 0u);
  EXPECT_GT(driver.submitted.load(), kDepth);
  EXPECT_EQ(driver.completed.load(), driver.submitted.load()) << "requests left behind";
  EXPECT_GT(sleeps, 0u) << "the reactor never slept with reads in flight";
  EXPECT_LE(idle_rounds, 2 * (after.sleeps - before.sleeps) + 16)
      << "the reactor went round its loop " << idle_rounds << " times without work, with "
      << driver.completed.load() << " reads done and " << sleeps << " sleeps";
}

INSTANTIATE_TEST_SUITE_P(Kernel, Wake, ::testing::Values("uring", "aio"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace sluice::bdev
