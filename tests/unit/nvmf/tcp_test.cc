// The NVMe/TCP transport over loopback: a host built on the PDU codec connects an admin and
// an I/O queue, brings the controller up and moves data in the capsule, through R2T and
// H2CData (split at MAXH2CDATA) and back as C2HData, with digests off and on; a corrupt data
// digest fails only its command; a malformed PDU gets a C2HTermReq and closes only its own
// connection; an unknown subsystem is an NVMe error; a silent host is reaped by keep-alive.
#include <random>

#include "nvmf_test_support.h"
#include "target/nvmf_tcp/nvmf_tcp.h"
#include "tcp_host.h"

namespace sluice::nvmf::testing {
namespace {

class NvmfTcpTest : public NvmfTest {
 protected:
  void SetUp() override {
    NvmfTest::SetUp();
    if (HasFatalFailure()) return;
    nvmf::tcp::TransportOptions o;
    o.max_h2c_data = 32 << 10;  // so that a 128 KiB write takes four H2CData PDUs
    auto t = nvmf::tcp::Transport::listen(*target_, net::ListenAddress::tcp_address("127.0.0.1", 0), o);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    transport_ = std::move(t.value());
    port_ = transport_->address().port;
  }
  void TearDown() override {
    transport_.reset();  // closes every connection before the target goes
    NvmfTest::TearDown();
  }

  // An admin queue brought up (Connect, CC.EN, CSTS.RDY) and an I/O queue joined to it.
  void associate(TcpHost& admin, TcpHost& io, bool digests, uint32_t kato_ms = 0, uint8_t io_cattr = 0) {
    ASSERT_TRUE(admin.connect(port_) && admin.ic(digests, digests));
    EXPECT_EQ(admin.ic_resp().maxh2cdata, 32u << 10);
    auto c = admin.connect_queue(0, kSubnqn, kHostnqn, hsp::connect::kNewController, kato_ms);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->cqe.status, 0);
    const auto cntlid = static_cast<uint16_t>(c->cqe.dw0);
    hsp::Sqe set{};
    set.opc = hsp::kFabricsOpcode;
    set.nsid = hsp::kFctypePropertySet;
    set.cdw11 = hsp::kRegCc;
    set.cdw12 = hsp::kCcEnable | hsp::cc_iosqes(6) | hsp::cc_iocqes(4);
    auto s = admin.command(set);
    ASSERT_TRUE(s);
    ASSERT_EQ(s->cqe.status, 0);
    ASSERT_TRUE(io.connect(port_) && io.ic(digests, digests));
    auto q = io.connect_queue(1, kSubnqn, kHostnqn, cntlid, 0, io_cattr);
    ASSERT_TRUE(q);
    ASSERT_EQ(q->cqe.status, 0);
  }

  static hsp::Sqe rw(uint8_t opc, uint64_t lba, uint32_t blocks) {
    hsp::Sqe sqe{};
    sqe.opc = opc;
    sqe.nsid = 1;
    sqe.cdw10 = static_cast<uint32_t>(lba);
    sqe.cdw11 = static_cast<uint32_t>(lba >> 32);
    sqe.cdw12 = blocks - 1;
    return sqe;
  }

  void read_write(TcpHost& admin, TcpHost& io) {
    // Identify Controller: 4 KiB of C2HData.
    hsp::Sqe id{};
    id.opc = hsp::kAdminIdentify;
    id.cdw10 = hsp::kCnsController;
    auto c = admin.command(id, {}, 4096);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->cqe.status, 0);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(c->data.data()) + hsp::idc::kSubnqn), kSubnqn);

    std::mt19937 rng(5);
    for (uint32_t bytes : {512u, 4096u, 8192u, 12288u, 128u << 10}) {
      std::vector<uint8_t> data(bytes);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      const uint64_t lba = bytes / 512;  // a different place each time
      for (bool in_capsule : {true, false}) {
        if (in_capsule && bytes > 8192) continue;  // beyond the in-capsule size
        auto w = io.command(rw(hsp::kIoWrite, lba, bytes / 512), data, 0, in_capsule);
        ASSERT_TRUE(w) << bytes;
        EXPECT_EQ(w->cqe.status, 0) << bytes;
        EXPECT_EQ(w->r2ts, in_capsule ? 0u : 1u);
        auto r = io.command(rw(hsp::kIoRead, lba, bytes / 512), {}, bytes);
        ASSERT_TRUE(r) << bytes;
        EXPECT_EQ(r->cqe.status, 0);
        EXPECT_FALSE(r->status_in_data);  // the host tracks SQ Head: every command gets a CapsuleResp
        EXPECT_EQ(r->data, data) << bytes << (in_capsule ? " in the capsule" : " after an R2T");
      }
    }
  }

  std::unique_ptr<nvmf::tcp::Transport> transport_;
  uint16_t port_ = 0;
};

TEST_F(NvmfTcpTest, ReadWriteWithoutDigests) {
  TcpHost admin, io;
  associate(admin, io, false);
  read_write(admin, io);
}

TEST_F(NvmfTcpTest, ReadWriteWithDigests) {
  TcpHost admin, io;
  associate(admin, io, true);
  read_write(admin, io);
}

TEST_F(NvmfTcpTest, ReadStatusRidesOnTheDataWithoutSqFlowControl) {
  TcpHost admin, io;
  associate(admin, io, true, 0, hsp::connect::kCattrDisableSqFlowControl);
  std::vector<uint8_t> data(8192);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  auto w = io.command(rw(hsp::kIoWrite, 16, 16), data, 0, false);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->cqe.status, 0);
  EXPECT_FALSE(w->status_in_data);  // a write has no C2HData to carry it
  // Twice as many reads as the queue has slots: each slot is freed by its data PDU alone.
  for (int i = 0; i < 64; ++i) {
    auto r = io.command(rw(hsp::kIoRead, 16, 16), {}, 8192);
    ASSERT_TRUE(r) << i;
    EXPECT_TRUE(r->status_in_data) << i;
    EXPECT_EQ(r->data, data) << i;
  }
  // A failed read still gets its CapsuleResp with the status.
  auto bad = io.command(rw(hsp::kIoRead, kBlocks, 1), {}, 512);
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->status_in_data);
  EXPECT_EQ(sc(bad->cqe.status), hsp::kScLbaOutOfRange);
  // The admin queue kept SQ flow control: its Identify ends with a CapsuleResp.
  hsp::Sqe id{};
  id.opc = hsp::kAdminIdentify;
  id.cdw10 = hsp::kCnsController;
  auto c = admin.command(id, {}, 4096);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->status_in_data);
  EXPECT_EQ(c->cqe.status, 0);
}

TEST_F(NvmfTcpTest, DataDigestErrorFailsOnlyItsCommand) {
  TcpHost admin, io;
  associate(admin, io, true);
  std::vector<uint8_t> data(4096, 0x5a);
  for (bool in_capsule : {true, false}) {
    auto w = io.command(rw(hsp::kIoWrite, 0, 8), data, 0, in_capsule, /*corrupt_ddgst=*/true);
    ASSERT_TRUE(w);
    EXPECT_EQ(sc(w->cqe.status), hsp::kScDataTransferError);
  }
  auto r = io.command(rw(hsp::kIoRead, 0, 8), {}, 4096);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cqe.status, 0);
  EXPECT_NE(r->data, data);  // neither write reached the device
}

TEST_F(NvmfTcpTest, MalformedPduClosesOnlyItsConnection) {
  TcpHost admin, io;
  associate(admin, io, false);
  TcpHost bad;
  ASSERT_TRUE(bad.connect(port_) && bad.ic(false, false));
  uint8_t junk[72] = {0x04, 0x00, 0x11, 0x00, 72, 0, 0, 0};  // a CapsuleCmd with HLEN 17
  ASSERT_TRUE(bad.send_all(junk, sizeof(junk)));
  EXPECT_TRUE(bad.sees_eof());
  // Before any ICReq: closed too.
  TcpHost early;
  ASSERT_TRUE(early.connect(port_));
  ASSERT_TRUE(early.send_all(junk, sizeof(junk)));
  EXPECT_TRUE(early.sees_eof());
  std::vector<uint8_t> data(4096, 7);
  auto w = io.command(rw(hsp::kIoWrite, 8, 8), data);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->cqe.status, 0);
}

TEST_F(NvmfTcpTest, ConnectToUnknownSubsystemIsAnNvmeError) {
  TcpHost h;
  ASSERT_TRUE(h.connect(port_) && h.ic(false, false));
  auto c = h.connect_queue(0, "nqn.2026-12.io.sluice:nope", kHostnqn);
  ASSERT_TRUE(c);
  EXPECT_EQ(sct(c->cqe.status), hsp::kSctCommandSpecific);
  EXPECT_NE(c->cqe.status, 0);
}

// A host that goes silent: once its keep-alive timeout passes (on the target's clock, moved
// here by hand), the transport closes its admin queue, which ends the association and so the
// I/O queue's connection too. A host that keeps talking stays.
TEST_F(NvmfTcpTest, SilentHostIsReapedByKeepAlive) {
  TcpHost admin, io, other_admin, other_io;
  associate(admin, io, false, /*kato_ms=*/2000);
  associate(other_admin, other_io, false, /*kato_ms=*/60000);
  now_ms_ += 10000;
  EXPECT_TRUE(admin.sees_eof());
  EXPECT_TRUE(io.sees_eof());
  EXPECT_TRUE(wait_until([&] { return transport_->live_connections() == 2; }));
  std::vector<uint8_t> data(512, 1);
  auto w = other_io.command(rw(hsp::kIoWrite, 0, 1), data);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->cqe.status, 0);
}

TEST_F(NvmfTcpTest, StoppingTheTransportClosesConnections) {
  TcpHost admin, io;
  associate(admin, io, false);
  EXPECT_EQ(transport_->live_connections(), 2u);
  transport_.reset();
  EXPECT_TRUE(admin.sees_eof());
  EXPECT_TRUE(io.sees_eof());
}

}  // namespace
}  // namespace sluice::nvmf::testing
