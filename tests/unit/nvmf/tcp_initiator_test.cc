// Sluice's NVMe/TCP host queue (src/nvme/tcp_queue.h) against Sluice's target over loopback:
// Connect and properties on the admin queue, then verify runs from 512 B to 1 MiB (in the
// capsule, after an R2T in several H2CData PDUs, read back in C2HData), digests off and on,
// buffers in several segments, 32 commands outstanding, a read's status riding on its data
// when SQ flow control is off, NVMe errors, and a queue whose controller goes away.
#include <random>

#include "nvme/tcp_queue.h"
#include "nvmf_test_support.h"
#include "target/nvmf_tcp/nvmf_tcp.h"

namespace sluice::nvmf::testing {
namespace {

using nvme::Completion;
using nvme::tcp::HostQueue;
using nvme::tcp::QueueOptions;

class TcpInitiatorTest : public NvmfTest {
 protected:
  TcpInitiatorTest() { max_io_bytes_ = 1 << 20; }

  void SetUp() override {
    NvmfTest::SetUp();
    if (HasFatalFailure()) return;
    nvmf::tcp::TransportOptions o;
    o.max_h2c_data = 32 << 10;  // so that large writes take several H2CData PDUs
    auto t = nvmf::tcp::Transport::listen(*target_, net::ListenAddress::tcp_address("127.0.0.1", 0), o);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    transport_ = std::move(t.value());
  }
  void TearDown() override {
    io_.reset();
    admin_.reset();
    transport_.reset();
    NvmfTest::TearDown();
  }

  net::ListenAddress address() const { return transport_->address(); }

  // An admin queue with its controller enabled, and I/O queue 1 joined to it.
  void associate(const QueueOptions& o = {}) {
    auto a = HostQueue::open(address(), 32, o);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    admin_ = std::move(a.value());
    auto cntlid = admin_->connect(0, kSubnqn, kHostnqn, sp::connect::kNewController, 0);
    ASSERT_TRUE(cntlid.ok()) << cntlid.status().to_string();
    sp::Sqe set{};
    set.opc = sp::kFabricsOpcode;
    set.nsid = sp::kFctypePropertySet;
    set.cdw11 = sp::kRegCc;
    set.cdw12 = sp::kCcEnable | sp::cc_iosqes(6) | sp::cc_iocqes(4);
    auto c = admin_->execute(set, nullptr, 0);
    ASSERT_TRUE(c.ok() && c->ok());
    auto q = HostQueue::open(address(), 64, o);
    ASSERT_TRUE(q.ok()) << q.status().to_string();
    io_ = std::move(q.value());
    auto joined = io_->connect(1, kSubnqn, kHostnqn, *cntlid, 0);
    ASSERT_TRUE(joined.ok()) << joined.status().to_string();
    EXPECT_EQ(*joined, *cntlid);
  }

  static sp::Sqe rw(uint8_t opc, uint64_t lba, uint32_t blocks) {
    sp::Sqe sqe{};
    sqe.opc = opc;
    sqe.nsid = 1;
    sqe.cdw10 = static_cast<uint32_t>(lba);
    sqe.cdw11 = static_cast<uint32_t>(lba >> 32);
    sqe.cdw12 = blocks - 1;
    return sqe;
  }

  // Writes then reads back every size, through one buffer or three unequal segments.
  void verify_sizes(bool segmented) {
    std::mt19937 rng(segmented ? 11 : 7);
    for (uint32_t bytes : {512u, 4096u, 8192u, 12288u, 64u << 10, 200u << 10, 1u << 20}) {
      std::vector<uint8_t> data(bytes), back(bytes, 0);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      auto split = [&](std::vector<uint8_t>& v) {
        std::vector<iovec> iov;
        if (!segmented || bytes < 2048) return std::vector<iovec>{{v.data(), v.size()}};
        const size_t a = bytes / 3 + 1, b = bytes / 4 + 3;
        iov.push_back({v.data(), a});
        iov.push_back({v.data() + a, b});
        iov.push_back({v.data() + a + b, bytes - a - b});
        return iov;
      };
      const uint64_t lba = 4096;
      auto wi = split(data);
      auto w = run(rw(sp::kIoWrite, lba, bytes / kBlockSize), wi);
      ASSERT_TRUE(w.ok()) << bytes << ": " << w.status().to_string();
      EXPECT_TRUE(w->ok()) << bytes << ": " << nvme::status_text(w->status);
      auto ri = split(back);
      auto r = run(rw(sp::kIoRead, lba, bytes / kBlockSize), ri);
      ASSERT_TRUE(r.ok()) << bytes;
      EXPECT_TRUE(r->ok()) << bytes << ": " << nvme::status_text(r->status);
      EXPECT_TRUE(back == data) << bytes << (segmented ? " in three segments" : "");
    }
  }

  // One I/O command to completion through submit() and poll(), bounded in time.
  Result<Completion> run(const sp::Sqe& sqe, const std::vector<iovec>& iov) {
    struct W {
      bool done = false;
      Completion c;
    } w;
    Errc e = io_->submit(
        sqe, iov.data(), static_cast<int>(iov.size()),
        [](void* a, const Completion& c) {
          static_cast<W*>(a)->c = c;
          static_cast<W*>(a)->done = true;
        },
        &w);
    if (e != Errc::ok) return Status(e, "submit");
    if (!wait_until([&] {
          io_->poll();
          return w.done;
        }))
      return Status(Errc::aborted, "no completion");
    return w.c;
  }

  std::unique_ptr<nvmf::tcp::Transport> transport_;
  std::unique_ptr<HostQueue> admin_, io_;
};

TEST_F(TcpInitiatorTest, PropertiesAndIdentifyOnTheAdminQueue) {
  associate();
  sp::Sqe get{};
  get.opc = sp::kFabricsOpcode;
  get.nsid = sp::kFctypePropertyGet;
  get.cdw10 = sp::kPropertySize8;
  get.cdw11 = sp::kRegCap;
  auto cap = admin_->execute(get, nullptr, 0);
  ASSERT_TRUE(cap.ok());
  const uint64_t value = uint64_t{cap->dw1} << 32 | cap->dw0;
  EXPECT_EQ(sp::cap_mqes(value), 128u);  // the target's max_queue_depth
  EXPECT_TRUE(sp::cap_css_nvm(value));   // a bit of the high dword
  get.cdw10 = 0;
  get.cdw11 = sp::kRegCsts;
  auto csts = admin_->execute(get, nullptr, 0);
  ASSERT_TRUE(csts.ok());
  EXPECT_EQ(csts->dw0 & sp::kCstsRdy, sp::kCstsRdy);

  std::vector<uint8_t> id(4096);
  sp::Sqe identify{};
  identify.opc = sp::kAdminIdentify;
  identify.cdw10 = sp::kCnsController;
  auto c = admin_->execute(identify, id.data(), id.size());
  ASSERT_TRUE(c.ok() && c->ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(id.data()) + sp::idc::kSubnqn), kSubnqn);
  EXPECT_EQ(id[sp::idc::kMdts], 8);  // 1 MiB = 4 KiB << 8
}

TEST_F(TcpInitiatorTest, VerifyEverySizeWithoutDigests) {
  associate();
  verify_sizes(false);
  verify_sizes(true);
  EXPECT_GT(io_->stats().r2ts, 0u);
  EXPECT_GT(io_->stats().h2c_pdus, io_->stats().r2ts);  // 1 MiB in 32 KiB H2CData PDUs
  EXPECT_GT(io_->stats().bounces, 0u);                  // C2HData straddling segments
  EXPECT_EQ(io_->stats().success_in_data, 0u);          // SQ flow control stayed on
}

TEST_F(TcpInitiatorTest, VerifyEverySizeWithDigests) {
  QueueOptions o;
  o.header_digest = o.data_digest = true;
  associate(o);
  verify_sizes(false);
  verify_sizes(true);
}

TEST_F(TcpInitiatorTest, ManyCommandsOutstanding) {
  associate();
  constexpr int kCommands = 32;
  constexpr uint32_t kBytes = 16 << 10;
  std::vector<std::vector<uint8_t>> bufs(kCommands, std::vector<uint8_t>(kBytes));
  std::vector<iovec> iov(kCommands);
  int done = 0, failed = 0;
  auto cb = [](void* arg, const Completion& c) {
    auto* counts = static_cast<std::pair<int*, int*>*>(arg);
    ++*counts->first;
    if (!c.ok()) ++*counts->second;
  };
  std::pair<int*, int*> counts{&done, &failed};
  for (int i = 0; i < kCommands; ++i) {
    std::fill(bufs[i].begin(), bufs[i].end(), static_cast<uint8_t>(i + 1));
    iov[i] = {bufs[i].data(), kBytes};
    ASSERT_EQ(io_->submit(rw(sp::kIoWrite, static_cast<uint64_t>(i) * (kBytes / kBlockSize), kBytes / kBlockSize),
                          &iov[i], 1, cb, &counts),
              Errc::ok);
  }
  EXPECT_EQ(io_->outstanding(), uint32_t{kCommands});
  ASSERT_TRUE(wait_until([&] {
    io_->poll();
    return done == kCommands;
  }));
  EXPECT_EQ(failed, 0);
  done = 0;
  for (int i = 0; i < kCommands; ++i) {
    std::fill(bufs[i].begin(), bufs[i].end(), 0);
    ASSERT_EQ(io_->submit(rw(sp::kIoRead, static_cast<uint64_t>(i) * (kBytes / kBlockSize), kBytes / kBlockSize),
                          &iov[i], 1, cb, &counts),
              Errc::ok);
  }
  ASSERT_TRUE(wait_until([&] {
    io_->poll();
    return done == kCommands;
  }));
  EXPECT_EQ(failed, 0);
  for (int i = 0; i < kCommands; ++i)
    EXPECT_EQ(std::count(bufs[i].begin(), bufs[i].end(), static_cast<uint8_t>(i + 1)), kBytes) << i;
}

TEST_F(TcpInitiatorTest, ReadStatusRidesOnItsDataWithoutSqFlowControl) {
  QueueOptions o;
  o.disable_sq_flow_control = true;
  associate(o);
  verify_sizes(false);
  EXPECT_GT(io_->stats().success_in_data, 0u);
}

TEST_F(TcpInitiatorTest, NvmeErrorsComeBackAsStatuses) {
  associate();
  std::vector<uint8_t> buf(512);
  auto r = run(rw(sp::kIoRead, kBlocks, 1), {{buf.data(), buf.size()}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->sc(), sp::kScLbaOutOfRange);
  EXPECT_FALSE(r->reset_aborted);
  // The queue goes on.
  auto ok = run(rw(sp::kIoRead, 0, 1), {{buf.data(), buf.size()}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 0);
  EXPECT_FALSE(io_->failed());
}

TEST_F(TcpInitiatorTest, ConnectToAnUnknownSubsystemIsRefused) {
  auto q = HostQueue::open(address(), 32, {});
  ASSERT_TRUE(q.ok());
  auto c = (*q)->connect(0, "nqn.2026-12.io.sluice:nobody", kHostnqn, sp::connect::kNewController, 0);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("Connect"), std::string::npos) << c.status().to_string();
}

TEST_F(TcpInitiatorTest, ALostControllerFailsWhatIsOutstanding) {
  associate();
  std::vector<uint8_t> buf(4096);
  iovec iov{buf.data(), buf.size()};
  int aborted = 0;
  ASSERT_EQ(io_->submit(
                rw(sp::kIoRead, 0, 8), &iov, 1,
                [](void* a, const Completion& c) { *static_cast<int*>(a) += c.reset_aborted ? 1 : 100; }, &aborted),
            Errc::ok);
  transport_.reset();  // closes every connection
  ASSERT_TRUE(wait_until([&] {
    io_->poll();
    return io_->failed();
  }));
  // The read either completed before the close (100) or was failed by it (1), never lost.
  EXPECT_TRUE(aborted == 1 || aborted == 100) << aborted;
  EXPECT_EQ(io_->outstanding(), 0u);
  EXPECT_FALSE(io_->error().empty());
  EXPECT_EQ(io_->submit(rw(sp::kIoRead, 0, 8), &iov, 1, nullptr, nullptr), Errc::io_error);
}

TEST_F(TcpInitiatorTest, NothingListeningIsAClearError) {
  const uint16_t port = address().port;
  transport_.reset();
  QueueOptions o;
  o.connect_timeout_ms = 2000;
  auto q = HostQueue::open(net::ListenAddress::tcp_address("127.0.0.1", port), 32, o);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("127.0.0.1"), std::string::npos) << q.status().to_string();
}

}  // namespace
}  // namespace sluice::nvmf::testing
