// Sluice's NVMe driver over NVMe/TCP against Sluice's target: the same Controller code as on
// PCIe (properties for registers, the admin queue as a connection) brings the controller up,
// identifies it, runs admin commands and I/O queues, and the nvme-tcp: device spec makes a
// bdev of a namespace that the bdev layer drives like any other (reads, writes across the
// in-capsule and R2T boundaries, flush, write zeroes, unmap), with digests too.
#include <random>

#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "nvme/fabrics_device.h"
#include "nvme/nvme.h"
#include "nvmf_test_support.h"
#include "target/nvmf_tcp/nvmf_tcp.h"

namespace sluice::nvmf::testing {
namespace {

class TcpControllerTest : public NvmfTest {
 protected:
  TcpControllerTest() { max_io_bytes_ = 1 << 20; }

  void SetUp() override {
    NvmfTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(nvme::register_bdev_scheme().ok());  // nvme: and nvme-tcp:
    auto t = nvmf::tcp::Transport::listen(*target_, net::ListenAddress::tcp_address("127.0.0.1", 0), {});
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    transport_ = std::move(t.value());
  }
  void TearDown() override {
    transport_.reset();
    NvmfTest::TearDown();
  }

  nvme::TcpTarget tcp_target() const {
    nvme::TcpTarget t;
    t.address = transport_->address();
    t.subnqn = kSubnqn;
    t.hostnqn = kHostnqn;
    return t;
  }
  std::string spec(const std::string& options = "") const {
    return "nvme-tcp:127.0.0.1:" + std::to_string(transport_->address().port) + "/" + kSubnqn + "/1" + options;
  }

  // Writes then reads back a pattern through the bdev layer at every size.
  void verify_through_bdev(const std::string& name) {
    sluice::testing::BdevHandle h(name);
    ASSERT_NE(h.ch, nullptr);
    auto io = h.io();
    std::mt19937 rng(3);
    for (uint32_t bytes : {512u, 8192u, 12288u, 128u << 10, 1u << 20}) {
      env::DmaBuffer out = env::DmaBuffer::zeroed(bytes), in = env::DmaBuffer::zeroed(bytes);
      auto* o = static_cast<uint8_t*>(out.data());
      for (uint32_t i = 0; i < bytes; ++i) o[i] = static_cast<uint8_t>(rng());
      const uint64_t lba = 2048;
      ASSERT_TRUE(io.write(out.data(), lba, bytes / 512).ok()) << bytes;
      ASSERT_TRUE(io.read(in.data(), lba, bytes / 512).ok()) << bytes;
      EXPECT_EQ(std::memcmp(out.data(), in.data(), bytes), 0) << bytes;
    }
    ASSERT_TRUE(io.flush().ok());
    ASSERT_TRUE(io.write_zeroes(2048, 16).ok());
    env::DmaBuffer z = env::DmaBuffer::zeroed(8192);
    std::memset(z.data(), 0xee, 8192);
    ASSERT_TRUE(io.read(z.data(), 2048, 16).ok());
    auto* zp = static_cast<const uint8_t*>(z.data());
    EXPECT_EQ(std::count(zp, zp + 8192, 0), 8192);
    EXPECT_TRUE(io.unmap(0, 64).ok());
  }

  std::unique_ptr<nvmf::tcp::Transport> transport_;
};

TEST_F(TcpControllerTest, BringUpIdentifyAndAdminCommands) {
  auto c = nvme::Controller::connect_tcp(tcp_target());
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const nvme::ControllerInfo& info = (*c)->info();
  EXPECT_EQ(info.transport, "tcp");
  EXPECT_EQ(info.subnqn, kSubnqn);
  EXPECT_EQ(info.model, "Sluice test");
  EXPECT_EQ(info.max_transfer_bytes, 1u << 20);
  EXPECT_EQ(info.in_capsule_bytes, 8192u);
  EXPECT_EQ(info.max_queue_entries, 128u);
  EXPECT_GE(info.io_queues, 1u);
  auto ns = (*c)->namespaces();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].nsid, 1u);
  EXPECT_EQ(ns[0].block_size, kBlockSize);
  EXPECT_EQ(ns[0].size_blocks, kBlocks);
  auto smart = (*c)->smart_log();
  ASSERT_TRUE(smart.ok()) << smart.status().to_string();
  auto aborted = (*c)->abort(1, 0);
  ASSERT_TRUE(aborted.ok());
  EXPECT_FALSE(*aborted);  // nothing by that CID was outstanding

  // An I/O queue: a command of each kind.
  auto q = (*c)->create_io_queue(32);
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  std::vector<uint8_t> buf(4096, 0x42), back(4096);
  iovec w{buf.data(), buf.size()}, r{back.data(), back.size()};
  int done = 0, bad = 0;
  auto cb = [](void* arg, const nvme::Completion& comp) {
    auto* n = static_cast<std::pair<int*, int*>*>(arg);
    ++*n->first;
    if (!comp.ok()) ++*n->second;
  };
  std::pair<int*, int*> counts{&done, &bad};
  // The queue's Connect is under way: commands are refused with busy until it completes.
  ASSERT_TRUE(wait_until([&] {
    (*q)->poll();
    return (*q)->write(1, &w, 1, 100, 8, cb, &counts) != Errc::busy;
  }));
  EXPECT_EQ(done, 0);
  ASSERT_EQ((*q)->flush(1, cb, &counts), Errc::ok);
  ASSERT_TRUE(wait_until([&] {
    (*q)->poll();
    return done == 2;
  }));
  ASSERT_EQ((*q)->read(1, &r, 1, 100, 8, cb, &counts), Errc::ok);
  nvme::spec::DsmRange range{0, 8, 200};
  ASSERT_EQ((*q)->deallocate(1, &range, 1, cb, &counts), Errc::ok);
  ASSERT_EQ((*q)->write_zeroes(1, 300, 8, cb, &counts), Errc::ok);
  ASSERT_TRUE(wait_until([&] {
    (*q)->poll();
    return done == 5;
  }));
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(back, buf);
}

TEST_F(TcpControllerTest, DeviceSpecMakesABdev) {
  auto made = bdev::create(spec(), sluice::testing::unique_name("tcpns"));
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  {
    auto b = bdev::find(*made);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->spec(), spec());
    EXPECT_EQ(b->geometry().num_blocks, kBlocks);
  }
  verify_through_bdev(*made);
  EXPECT_TRUE(bdev::unregister(*made).ok());
}

TEST_F(TcpControllerTest, DeviceSpecWithDigests) {
  auto made = bdev::create(spec("?hdgst=1&ddgst=1"), sluice::testing::unique_name("tcpns"));
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  verify_through_bdev(*made);
  EXPECT_TRUE(bdev::unregister(*made).ok());
}

TEST_F(TcpControllerTest, BadSpecsAndUnreachableTargetsAreClearErrors) {
  for (const char* bad : {"nvme-tcp:127.0.0.1:4420", "nvme-tcp:127.0.0.1:99999/nqn.x:y", "nvme-tcp:[::1/nqn.x:y",
                          "nvme-tcp:127.0.0.1:4420/nqn.x:y?hdgst=2"}) {
    auto made = bdev::create(bad, sluice::testing::unique_name("tcpbad"));
    ASSERT_FALSE(made.ok()) << bad;
    EXPECT_EQ(made.status().message().rfind("nvme-tcp: ", 0), 0u) << made.status().to_string();
  }
  // A subsystem the target does not have: Connect is refused, and the message says where.
  auto none = bdev::create(
      "nvme-tcp:127.0.0.1:" + std::to_string(transport_->address().port) + "/nqn.2026-12.io.sluice:missing/1",
      sluice::testing::unique_name("tcpbad"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("nqn.2026-12.io.sluice:missing"), std::string::npos)
      << none.status().to_string();
  // A namespace it does not have.
  auto ns9 = bdev::create("nvme-tcp:127.0.0.1:" + std::to_string(transport_->address().port) + "/" + kSubnqn + "/9",
                          sluice::testing::unique_name("tcpbad"));
  EXPECT_FALSE(ns9.ok());
}

// The target removes the namespace while the initiator's bdev has reads and writes in flight:
// every request completes (done or failed, none lost, no hang), later ones fail with an
// error, and the bdev can be unregistered.
TEST_F(TcpControllerTest, NamespaceRemovedUnderIo) {
  auto made = bdev::create(spec(), sluice::testing::unique_name("tcpns"));
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  {
    sluice::testing::BdevHandle h(*made);
    ASSERT_NE(h.ch, nullptr);
    constexpr int kInFlight = 32;
    std::vector<env::DmaBuffer> bufs;
    for (int i = 0; i < kInFlight; ++i) bufs.push_back(env::DmaBuffer::zeroed(8192));
    int done = 0, failed = 0, submitted = 0;
    auto on_done = [](void* arg, Errc e) {
      auto* counts = static_cast<std::pair<int*, int*>*>(arg);
      ++*counts->first;
      if (e != Errc::ok) ++*counts->second;
    };
    std::pair<int*, int*> counts{&done, &failed};
    bool removed = false;
    // Keep 32 requests going; remove the namespace once the first 64 are done.
    ASSERT_TRUE(sluice::testing::poll_until(h.ch, [&] {
      while (submitted - done < kInFlight && submitted < 2000) {
        auto& b = bufs[submitted % kInFlight];
        const uint64_t lba = (submitted * 16) % (kBlocks - 16);
        Status st = submitted % 2 ? h.desc->read(h.ch, b.data(), lba, 16, on_done, &counts)
                                  : h.desc->write(h.ch, b.data(), lba, 16, on_done, &counts);
        if (!st.ok()) break;
        ++submitted;
      }
      if (!removed && done >= 64) {
        removed = true;
        EXPECT_TRUE(run_on(kHome, [&] { EXPECT_TRUE(target_->remove_namespace(kSubnqn, 1).ok()); }));
      }
      return removed && failed > 0 && done == submitted;
    }));
    EXPECT_GT(failed, 0);
    EXPECT_EQ(done, submitted);
    auto io = h.io();
    env::DmaBuffer after = env::DmaBuffer::zeroed(512);
    EXPECT_FALSE(io.read(after.data(), 0, 1).ok());  // the namespace is gone for good
  }
  EXPECT_TRUE(bdev::unregister(*made).ok());
}

TEST(TcpTargetTest, ParsesAddressesAndSubsystems) {
  auto a = nvme::TcpTarget::parse("10.0.2.2:4421/nqn.2014-08.org.nvmexpress:uuid:1234");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->address.host, "10.0.2.2");
  EXPECT_EQ(a->address.port, 4421);
  EXPECT_EQ(a->subnqn, "nqn.2014-08.org.nvmexpress:uuid:1234");
  auto b = nvme::TcpTarget::parse("[::1]/nqn.a:b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->address.host, "::1");
  EXPECT_EQ(b->address.port, 4420);
  EXPECT_EQ(b->to_string(), "[::1]:4420/nqn.a:b");
  EXPECT_FALSE(nvme::TcpTarget::parse("127.0.0.1:4420").ok());
  EXPECT_FALSE(nvme::TcpTarget::parse("127.0.0.1:0/nqn.a:b").ok());
  EXPECT_FALSE(nvme::TcpTarget::parse(":4420/nqn.a:b").ok());
}

}  // namespace
}  // namespace sluice::nvmf::testing
