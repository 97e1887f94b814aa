// What the bdev below does to the SCSI view: a capacity change becomes a unit attention for
// every nexus, I/O errors become MEDIUM ERROR sense; and two threads, each with its own
// Channel, share one LUN.
#include <atomic>
#include <thread>

#include "bdev/backend.h"
#include "bdev/channel.h"
#include "scsi_test_support.h"

namespace sluice::scsi::testing {
namespace {

// A device whose size the test changes and whose I/O it can make fail; no data moves.
class TestBdev final : public bdev::Bdev {
 public:
  TestBdev(std::string name, bdev::Geometry g) : Bdev(std::move(name), g) {}
  std::string spec() const override { return "test"; }
  Result<std::unique_ptr<bdev::BackendQueue>> create_queue() override {
    return std::unique_ptr<bdev::BackendQueue>(new Queue(fail_));
  }
  void resize(uint64_t blocks) {
    bdev::Geometry g = geometry();
    g.num_blocks = blocks;
    set_geometry(g);
  }
  void fail(bool on) { fail_ = on; }

 private:
  class Queue final : public bdev::BackendQueue {
   public:
    explicit Queue(std::atomic<bool>& fail) : fail_(fail) {}
    void submit(bdev::BdevIo* io) override { io->channel->complete(io, fail_ ? Errc::io_error : Errc::ok); }

   private:
    std::atomic<bool>& fail_;
  };
  std::atomic<bool> fail_{false};
};

class ScsiEventsTest : public ScsiTest {
 protected:
  void SetUp() override {
    name_ = sluice::testing::unique_name("scsitest");
    bdev::Geometry g;
    g.block_size = kBlockSize;
    g.num_blocks = 1000;
    g.supported =
        bdev::io_bit(bdev::IoType::read) | bdev::io_bit(bdev::IoType::write) | bdev::io_bit(bdev::IoType::flush);
    test_ = std::make_shared<TestBdev>(name_, g);
    ASSERT_TRUE(bdev::register_bdev(test_).ok());
    ScsiTest::SetUp();
    ch_.reset();
    ASSERT_TRUE(dev_->add_lun(1, name_).ok());
    ch_ = std::make_unique<Channel>(*dev_);
  }
  void TearDown() override {
    ScsiTest::TearDown();
    EXPECT_TRUE(bdev::unregister(name_).ok());
    test_.reset();
  }
  std::string name_;
  std::shared_ptr<TestBdev> test_;
};

TEST_F(ScsiEventsTest, CapacityChangeIsAUnitAttentionForEveryNexusOnce) {
  Cmd before({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(before, a_, 1), kStatusGood);
  test_->resize(2000);
  Cmd a1({op::kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8);
  ASSERT_EQ(exec(a1, a_, 1), kStatusCheckCondition);
  EXPECT_EQ(a1.sense_key(), sense_key::kUnitAttention);
  EXPECT_EQ(a1.asc(), 0x2a09);  // CAPACITY DATA HAS CHANGED
  Cmd a2({op::kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8);
  ASSERT_EQ(exec(a2, a_, 1), kStatusGood);
  EXPECT_EQ(get32(a2.data()), 1999u);
  Cmd b1({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(b1, b_, 1), kStatusCheckCondition);
  EXPECT_EQ(b1.asc(), 0x2a09);
  Cmd b2({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(b2, b_, 1), kStatusGood);
  // LUN 0 did not change.
  Cmd other({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(other, b_, 0), kStatusGood);
}

TEST_F(ScsiEventsTest, IoErrorsAreMediumErrorsWithTheLba) {
  test_->fail(true);
  auto r = make(rw16(op::kRead16, 77, 2), 2 * kBlockSize);
  ASSERT_EQ(exec(*r, a_, 1), kStatusCheckCondition);
  EXPECT_EQ(r->sense_key(), sense_key::kMediumError);
  EXPECT_EQ(r->asc(), 0x1100);  // UNRECOVERED READ ERROR
  EXPECT_EQ(r->task.sense[0], 0xf0);
  EXPECT_EQ(get32(r->task.sense.data() + 3), 77u);
  auto w = make(rw16(op::kWrite16, 5, 1), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*w, a_, 1), kStatusCheckCondition);
  EXPECT_EQ(w->sense_key(), sense_key::kMediumError);
  EXPECT_EQ(w->asc(), 0x0c00);  // WRITE ERROR
  Cmd sync({op::kSyncCache10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(sync, a_, 1), kStatusCheckCondition);
  EXPECT_EQ(sync.asc(), 0x0c00);
  test_->fail(false);
  auto ok = make(rw16(op::kRead16, 77, 2), 2 * kBlockSize);
  EXPECT_EQ(exec(*ok, a_, 1), kStatusGood);
}

TEST_F(ScsiEventsTest, NoFlushMeansNoWriteCacheToReportOrTurnOn) {
  const std::string name = sluice::testing::unique_name("scsitest");
  bdev::Geometry g;
  g.block_size = kBlockSize;
  g.num_blocks = 100;
  g.supported = bdev::io_bit(bdev::IoType::read) | bdev::io_bit(bdev::IoType::write);
  ASSERT_TRUE(bdev::register_bdev(std::make_shared<TestBdev>(name, g)).ok());
  ch_.reset();
  ASSERT_TRUE(dev_->add_lun(2, name).ok());
  ch_ = std::make_unique<Channel>(*dev_);
  Cmd current({op::kModeSense6, 0x08, 0x08, 0, 255, 0}, 255);
  ASSERT_EQ(exec(current, a_, 2), kStatusGood);
  EXPECT_EQ(current[6] & 0x04, 0);  // WCE: nothing volatile
  Cmd changeable({op::kModeSense6, 0x08, 0x48, 0, 255, 0}, 255);
  ASSERT_EQ(exec(changeable, a_, 2), kStatusGood);
  EXPECT_EQ(changeable[6], 0);
  Cmd sel({op::kModeSelect6, 0x10, 0, 0, 24, 0}, 24, DataDirection::write);
  sel.data()[4] = 0x08;
  sel.data()[5] = 0x12;
  sel.data()[6] = 0x04;  // WCE on
  ASSERT_EQ(exec(sel, a_, 2), kStatusCheckCondition);
  EXPECT_EQ(sel.asc(), 0x2600);
  Cmd sync({op::kSyncCache10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(sync, a_, 2), kStatusGood);  // nothing to flush
  ch_.reset();
  dev_.reset();
  EXPECT_TRUE(bdev::unregister(name).ok());
  ScsiTest::TearDown();
  ScsiTest::SetUp();  // the fixture's TearDown expects a device
}

TEST_F(ScsiEventsTest, NoUnmapOnTheDeviceMeansNoUnmapCommand) {
  Cmd c({op::kUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 24, DataDirection::write);
  ASSERT_EQ(exec(c, a_, 1), kStatusCheckCondition);
  EXPECT_EQ(c.asc(), 0x2000);
  Cmd b2({op::kInquiry, 1, 0xb2, 0, 64, 0}, 64);
  ASSERT_EQ(exec(b2, a_, 1), kStatusGood);
  EXPECT_EQ(b2[5], 0);  // LBPU, LBPWS, LBPWS10 clear
  Cmd cap({op::kServiceActionIn16, op::kSaReadCapacity16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32);
  ASSERT_EQ(exec(cap, a_, 1), kStatusGood);
  EXPECT_EQ(cap[14] & 0x80, 0);  // LBPME
}

// Two threads, each with its own Channel (and so its own bdev channel) on LUN 0 of the
// malloc bdev, write and read back their own ranges at once.
TEST_F(ScsiTest, TwoThreadsEachWithItsOwnChannel) {
  std::atomic<int> failures{0};
  auto worker = [&](uint64_t base, uint32_t seed, uint64_t nexus) {
    Channel ch(*dev_);
    for (int i = 0; i < 50; ++i) {
      const auto data = pattern(4 * kBlockSize, seed + i);
      auto w = make(rw16(op::kWrite16, base + 4 * (i % 8), 4), data.size(), DataDirection::write);
      std::memcpy(w->data(), data.data(), data.size());
      auto r = make(rw16(op::kRead16, base + 4 * (i % 8), 4), data.size());
      for (Cmd* c : {w.get(), r.get()}) {
        c->task.nexus = nexus;
        ch.execute(&c->task);
        const uint64_t deadline = clock::now_ns() + sluice::testing::kIoTimeoutMs * 1000000;
        while (!c->done && clock::now_ns() < deadline) thread::poll_thread_channels();
        if (!c->done || c->task.status != kStatusGood) ++failures;
      }
      if (std::memcmp(r->data(), data.data(), data.size()) != 0) ++failures;
    }
    if (ch.in_flight() != 0) ++failures;
  };
  std::thread t1(worker, 0, 100, a_);
  std::thread t2(worker, 1000, 200, b_);
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace sluice::scsi::testing
