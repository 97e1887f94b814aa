// The nvme: bdev scheme on the model registered as a fake BDF: the bdev conformance checks
// (read/write, vectored, split, flush, write zeroes, unmap, range checks, back-pressure,
// threads), namespaces sharing a controller, and shutdown when the last bdev goes.
#include <atomic>
#include <thread>
#include <vector>

#include <gmock/gmock.h>

#include "bdev/bdev.h"
#include "nvme_test_support.h"

namespace sluice::nvme::testing {
namespace {

constexpr char kBdf[] = "0000:fe:00.0";

class NvmeBdevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(register_bdev_scheme().ok());
    ModelOptions mo;
    mo.bdf = kBdf;
    mo.namespaces = {{1, 512, 64 << 11}, {2, 4096, 1024}};  // 64 MiB, 4 MiB
    model_ = std::make_shared<ControllerModel>(mo);
    model_->register_as_test_device();
  }
  void TearDown() override {
    close();
    for (auto& n : names_) (void)bdev::unregister(n);
    names_.clear();
    EXPECT_EQ(model_->violations(), 0u) << model_->last_violation();
    model_->unregister_as_test_device();
  }
  void open(const std::string& spec) {
    auto name = bdev::create(spec);
    ASSERT_TRUE(name.ok()) << name.status().to_string();
    names_.push_back(*name);
    auto d = bdev::open(*name);
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    desc_ = std::move(d.value());
    auto ch = desc_->get_channel();
    ASSERT_TRUE(ch.ok()) << ch.status().to_string();
    ch_ = *ch;
  }
  void close() {
    if (ch_) {
      EXPECT_TRUE(desc_->put_channel(ch_).ok());
    }
    ch_ = nullptr;
    desc_.reset();
  }
  bdev::SyncIo sync() { return bdev::SyncIo{*desc_, ch_, 10000}; }
  uint64_t blocks() const { return desc_->geometry().num_blocks; }

  std::shared_ptr<ControllerModel> model_;
  std::vector<std::string> names_;
  std::unique_ptr<bdev::BdevDesc> desc_;
  bdev::BdevChannel* ch_ = nullptr;
};

TEST_F(NvmeBdevTest, GeometryComesFromTheNamespace) {
  open(std::string("nvme:") + kBdf + "/1");
  const bdev::Geometry& g = desc_->geometry();
  EXPECT_EQ(g.block_size, 512u);
  EXPECT_EQ(g.num_blocks, 64u << 11);
  EXPECT_EQ(g.max_transfer_blocks, (256u << 10) / 512);
  EXPECT_TRUE(g.supports(bdev::IoType::unmap));
  EXPECT_TRUE(g.supports(bdev::IoType::write_zeroes));
  EXPECT_TRUE(g.supports(bdev::IoType::flush));
  EXPECT_TRUE(g.unmap_zeroes);
  EXPECT_EQ(desc_->bdev().spec(), std::string("nvme:") + kBdf + "/1");
}

TEST_F(NvmeBdevTest, BadSpecsFailWithAMessage) {
  auto r = bdev::create("nvme:banana");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("is not a PCI address"));
  r = bdev::create(std::string("nvme:") + kBdf + "/9");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("no active namespace 9"));
  r = bdev::create(std::string("nvme:") + kBdf + "/1?bs=4096");
  EXPECT_FALSE(r.ok());
  r = bdev::create(std::string("nvme:") + kBdf + "/1?colour=red");
  EXPECT_FALSE(r.ok());
}

TEST_F(NvmeBdevTest, ReadAfterWriteVectoredAndSplit) {
  open(std::string("nvme:") + kBdf + "/1?mt=8K");
  const size_t n = 64 << 10;  // 8 children of 8 KiB
  env::DmaBuffer out(n), in(n);
  fill_pattern(out.data(), n, 5);
  ASSERT_TRUE(sync().write(out.data(), 1000, n / 512).ok());
  iovec iov[] = {{in.data(), 4096}, {static_cast<uint8_t*>(in.data()) + 4096, n - 4096}};
  ASSERT_TRUE(sync().readv(iov, 2, 1000, n / 512).ok());
  EXPECT_EQ(std::memcmp(out.data(), in.data(), n), 0);
  // Heap buffers work too (bounced).
  std::vector<uint8_t> heap(4096);
  ASSERT_TRUE(sync().read(heap.data(), 1000, 8).ok());
  EXPECT_EQ(std::memcmp(heap.data(), out.data(), 4096), 0);
}

TEST_F(NvmeBdevTest, WriteZeroesAndUnmapSpanManyCommands) {
  open(std::string("nvme:") + kBdf + "/1");
  // 100000 blocks: write zeroes needs two commands (16-bit block counts).
  const uint64_t start = 1000, count = 100000;
  std::memset(model_->ns_data(1), 0xab, (64u << 20));
  ASSERT_TRUE(sync().write_zeroes(start, count).ok());
  const uint8_t* media = model_->ns_data(1);
  EXPECT_EQ(media[start * 512 - 1], 0xab);
  EXPECT_TRUE(all_zero(media + start * 512, count * 512));
  EXPECT_EQ(media[(start + count) * 512], 0xab);
  EXPECT_EQ(model_->counters().write_zeroes, 2u);
  Status st = sync().unmap(120000, 1000);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(all_zero(media + 120000 * 512, 1000 * 512));
  EXPECT_EQ(media[121000 * 512], 0xab);
  ASSERT_TRUE(sync().flush().ok());
  EXPECT_EQ(model_->counters().flushes, 1u);
}

TEST_F(NvmeBdevTest, OutOfRangeIsRejectedAndDeviceErrorsReachTheCaller) {
  open(std::string("nvme:") + kBdf + "/1");
  env::DmaBuffer buf(4096);
  EXPECT_EQ(sync().read(buf.data(), blocks() - 4, 8).code(), Errc::out_of_range);
  model_->inject({Injection::kAnyQueue, spec::kIoRead, 1, spec::make_status(spec::kSctMedia, spec::kScUnrecoveredReadError)});
  EXPECT_EQ(sync().read(buf.data(), 0, 8).code(), Errc::io_error);
  EXPECT_TRUE(sync().read(buf.data(), 0, 8).ok());
}

TEST_F(NvmeBdevTest, FullQueueIsBackPressure) {
  open(std::string("nvme:") + kBdf + "/1?qd=4");
  env::DmaBuffer buf(4096);
  int done = 0, busy = 0;
  auto cb = [](void* arg, Errc st) {
    EXPECT_EQ(st, Errc::ok);
    ++*static_cast<int*>(arg);
  };
  for (int i = 0; i < 8; ++i) {
    Status st = desc_->read(ch_, buf.data(), i * 8, 8, cb, &done);
    if (st.code() == Errc::busy) ++busy;
    else ASSERT_TRUE(st.ok()) << st.to_string();
  }
  EXPECT_EQ(busy, 4);
  const uint64_t deadline = clock::now_ns() + 5000000000ull;
  while (done < 4 && clock::now_ns() < deadline) bdev::poll(ch_);
  EXPECT_EQ(done, 4);
}

// A controller whose queues hold fewer slots than the channel's split children (CAP.MQES + 1
// <= 65) once asked for ~4.29 billion requests: the depth is the usable slots, and I/O that
// splits into more children than the queue holds still completes (deferred, not refused).
TEST_F(NvmeBdevTest, SmallQueueLimitGivesASmallDepthAndWorks) {
  for (uint32_t entries : {2u, 16u, 65u, 66u}) {
    SCOPED_TRACE(entries);
    close();
    for (auto& n : names_) ASSERT_TRUE(bdev::unregister(n).ok());
    names_.clear();
    model_->unregister_as_test_device();
    ModelOptions mo;
    mo.bdf = kBdf;
    mo.max_queue_entries = entries;
    mo.namespaces = {{1, 512, 2048}};
    model_ = std::make_shared<ControllerModel>(mo);
    model_->register_as_test_device();
    open(std::string("nvme:") + kBdf + "/1?mt=4K");
    const uint32_t depth = desc_->geometry().queue_depth;
    EXPECT_GE(depth, 1u);
    EXPECT_LE(depth, std::max(entries - 1, 1u));
    const size_t n = 256 << 10;  // 64 children of 4 KiB
    env::DmaBuffer out(n), in(n);
    fill_pattern(out.data(), n, static_cast<int>(entries));
    ASSERT_TRUE(sync().write(out.data(), 8, n / 512).ok());
    ASSERT_TRUE(sync().read(in.data(), 8, n / 512).ok());
    EXPECT_EQ(std::memcmp(out.data(), in.data(), n), 0);
    EXPECT_EQ(model_->violations(), 0u) << model_->last_violation();
  }
}

TEST_F(NvmeBdevTest, NamespacesShareOneControllerWhichShutsDownWithTheLastBdev) {
  auto a = bdev::create(std::string("nvme:") + kBdf + "/1", "nvme_a");
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = bdev::create(std::string("nvme:") + std::string(kBdf).substr(5) + "/2", "nvme_b");  // short BDF form
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(model_->counters().enables, 1u);
  EXPECT_EQ(bdev::find("nvme_b")->geometry().block_size, 4096u);
  ASSERT_TRUE(bdev::unregister("nvme_a").ok());
  EXPECT_FALSE(model_->shutdown_complete());
  ASSERT_TRUE(bdev::unregister("nvme_b").ok());
  EXPECT_TRUE(model_->shutdown_complete());
  EXPECT_EQ(model_->counters().unsafe_shutdowns, 0u);
}

TEST_F(NvmeBdevTest, TwoControllersAreIndependent) {
  ModelOptions mo;
  mo.bdf = "0000:fe:01.0";
  mo.namespaces = {{1, 512, 2048}};
  auto other = std::make_shared<ControllerModel>(mo);
  other->register_as_test_device();
  auto a = bdev::create(std::string("nvme:") + kBdf, "nvme_first");
  auto b = bdev::create("nvme:0000:fe:01.0", "nvme_second");
  ASSERT_TRUE(a.ok() && b.ok());
  names_ = {*a, *b};
  for (const char* name : {"nvme_first", "nvme_second"}) {
    auto d = bdev::open(name);
    ASSERT_TRUE(d.ok());
    auto ch = (*d)->get_channel();
    ASSERT_TRUE(ch.ok());
    env::DmaBuffer buf(4096);
    std::memset(buf.data(), name[5], 4096);  // 'f' or 's'
    EXPECT_TRUE((bdev::SyncIo{**d, *ch, 10000}.write(buf.data(), 8, 8).ok()));
    EXPECT_TRUE((*d)->put_channel(*ch).ok());
  }
  EXPECT_EQ(model_->ns_data(1)[8 * 512], 'f');
  EXPECT_EQ(other->ns_data(1)[8 * 512], 's');
  for (auto& n : names_) EXPECT_TRUE(bdev::unregister(n).ok());
  names_.clear();
  EXPECT_TRUE(other->shutdown_complete());
  EXPECT_EQ(other->violations(), 0u) << other->last_violation();
  other->unregister_as_test_device();
}

TEST_F(NvmeBdevTest, ChannelsOnManyThreads) {
  open(std::string("nvme:") + kBdf + "/1");
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      auto ch = desc_->get_channel();
      if (!ch.ok()) {
        ++bad;
        return;
      }
      bdev::SyncIo io{*desc_, *ch, 10000};
      env::DmaBuffer out(8192), in(8192);
      for (int i = 0; i < 20; ++i) {
        const uint64_t lba = (t * 100 + i) * 16;
        fill_pattern(out.data(), 8192, lba);
        if (!io.write(out.data(), lba, 16).ok() || !io.read(in.data(), lba, 16).ok()) ++bad;
        if (std::memcmp(out.data(), in.data(), 8192) != 0) ++bad;
      }
      if (!desc_->put_channel(*ch).ok()) ++bad;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace sluice::nvme::testing
