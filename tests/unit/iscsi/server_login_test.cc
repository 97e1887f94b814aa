// The iSCSI server's login phase, discovery, NOP, logout and bad input,
// over loopback with the codec-built test initiator.
#include <thread>

#include "server_test_support.h"

namespace sluice::iscsi::testing {
namespace {

TEST_F(IscsiServerTest, DiscoverySessionAnswersSendTargets) {
  serve();
  Initiator i;
  ASSERT_TRUE(i.connect(port_));
  ASSERT_TRUE(i.login({}));
  EXPECT_NE(i.tsih, 0);  // a Discovery session is a session too
  auto text = i.text_request(std::string("SendTargets=All") + '\0');
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find(std::string("TargetName=") + kNode), std::string::npos) << *text;
  EXPECT_NE(text->find("TargetAddress=127.0.0.1:" + std::to_string(port_) + ",1"), std::string::npos) << *text;
  auto out = i.logout();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->response, 0);
  EXPECT_TRUE(i.closed_by_peer());
}

// An answer longer than the initiator's MaxRecvDataSegmentLength continues over Text
// Responses (C bit, a target transfer tag) as the initiator asks for more.
TEST_F(IscsiServerTest, LongSendTargetsAnswerContinues) {
  start_target();
  add_node(NodeConfig{.name = kNode, .luns = {{0, bdev_}}});
  for (int n = 0; n < 40; ++n) add_node(NodeConfig{.name = "iqn.2026-12.io.sluice:spare" + std::to_string(n)});
  Initiator i;
  ASSERT_TRUE(i.connect(port_));
  ASSERT_TRUE(i.login({.max_recv = 512}));
  auto text = i.text_request(std::string("SendTargets=All") + '\0');
  ASSERT_TRUE(text.has_value());
  EXPECT_GT(text->size(), 512u);
  int names = 0;  // parse_text() refuses repeated keys, which SendTargets answers have
  for (size_t at = 0; (at = text->find("TargetName=", at)) != std::string::npos; ++at) ++names;
  EXPECT_EQ(names, 41);
  EXPECT_EQ(text->back(), '\0');
}

TEST_F(IscsiServerTest, NormalLoginNegotiatesAndAssignsTsih) {
  serve();
  auto i = session({.digests = true, .initial_r2t = false, .first_burst = 65536, .max_burst = 262144});
  EXPECT_NE(i->tsih, 0);
  EXPECT_EQ(i->agreed["HeaderDigest"], "CRC32C");
  EXPECT_EQ(i->agreed["DataDigest"], "CRC32C");
  EXPECT_EQ(i->agreed["InitialR2T"], "No");
  EXPECT_EQ(i->agreed["TargetAlias"], "disk zero");
  auto j = session({.isid_last = 2});
  EXPECT_NE(j->tsih, i->tsih);
}

TEST_F(IscsiServerTest, LoginToAnUnknownTargetFails) {
  serve();
  Initiator i;
  ASSERT_TRUE(i.connect(port_));
  EXPECT_FALSE(i.login({.target = "iqn.2026-12.io.sluice:nothing"}));
  EXPECT_EQ(i.login_status, 0x0203);
  EXPECT_TRUE(i.closed_by_peer());
}

TEST_F(IscsiServerTest, ChapNodeNeedsTheSecret) {
  start_target();
  ASSERT_TRUE(target_->add_auth_group(1, {{.user = "alice", .secret = "twelve-bytes-or-more"}}).ok());
  add_node(NodeConfig{.name = kNode, .luns = {{0, bdev_}}, .chap = {.require_chap = true, .chap_group = 1}});
  Initiator none;
  ASSERT_TRUE(none.connect(port_));
  EXPECT_FALSE(none.login({.target = kNode}));
  EXPECT_EQ(none.login_status >> 8, 2);
  Initiator wrong;
  ASSERT_TRUE(wrong.connect(port_));
  EXPECT_FALSE(wrong.login({.target = kNode, .chap_name = "alice", .chap_secret = "not-the-secret-at-all"}));
  EXPECT_EQ(wrong.login_status, 0x0201);
  auto i = session({.chap_name = "alice", .chap_secret = "twelve-bytes-or-more"});
  uint8_t tur[16] = {};
  auto r = run_command(*i, tur, 0, nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 0);
}

TEST_F(IscsiServerTest, StalledLoginTimesOut) {
  serve({.login_timeout = 200ms});
  Initiator i;
  ASSERT_TRUE(i.connect(port_));
  EXPECT_TRUE(i.closed_by_peer());
  EXPECT_TRUE(sluice::testing::wait_until([&] { return target_->live_connections() == 0; }));
}

TEST_F(IscsiServerTest, NopOutIsAnsweredWithItsPingData) {
  serve();
  auto i = session();
  // ITT 0xffffffff wants no answer: the next PDU back is the second NOP's.
  ASSERT_TRUE(i->nop(kReservedTag, {}).has_value());
  std::vector<uint8_t> ping(1000, 0x5a);
  auto r = i->nop(77, ping);
  ASSERT_TRUE(r.has_value());
  auto* in = std::get_if<NopIn>(&r->pdu.header);
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->itt, 77u);
  EXPECT_EQ(in->ttt, kReservedTag);
  EXPECT_EQ(in->exp_cmd_sn, i->cmd_sn());
  EXPECT_GT(int32_t(in->max_cmd_sn - in->exp_cmd_sn), 0);
  EXPECT_EQ(r->data, ping);
}

// An idle initiator gets NOP-In pings; answering them keeps the session for longer than
// nop_timeout, and an initiator that stops answering is dropped.
TEST_F(IscsiServerTest, AnIdleInitiatorIsPingedAndASilentOneIsDropped) {
  serve({.nop_in_interval = 100ms, .nop_timeout = 300ms});
  auto i = session();
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 4; ++round) {
    const uint32_t stat_sn = i->exp_stat_sn();
    auto r = i->recv();
    ASSERT_TRUE(r.has_value()) << "round " << round;
    auto* ping = std::get_if<NopIn>(&r->pdu.header);
    ASSERT_NE(ping, nullptr) << "round " << round;
    EXPECT_EQ(ping->itt, kReservedTag);
    EXPECT_NE(ping->ttt, kReservedTag);  // an answer is asked for
    EXPECT_EQ(ping->stat_sn, stat_sn);   // the current StatSN, not a new one
    EXPECT_EQ(ping->exp_cmd_sn, i->cmd_sn());
    EXPECT_TRUE(r->data.empty());
    NopOut answer;
    answer.immediate = true;
    answer.ttt = ping->ttt;
    answer.cmd_sn = i->cmd_sn();
    answer.exp_stat_sn = i->exp_stat_sn();
    ASSERT_TRUE(i->send(answer));
  }
  EXPECT_GT(std::chrono::steady_clock::now() - start, 300ms);  // longer than nop_timeout: the answers kept it
  EXPECT_EQ(target_->live_connections(), 1u);
  // Commands still work after the pings.
  EXPECT_TRUE(i->nop(9, {}).has_value());
  // Silence: one more ping, then the connection is closed.
  auto r = i->recv();
  ASSERT_TRUE(r.has_value());
  ASSERT_NE(std::get_if<NopIn>(&r->pdu.header), nullptr);
  EXPECT_TRUE(i->closed_by_peer());
  EXPECT_TRUE(sluice::testing::wait_until([&] { return target_->live_connections() == 0; }));
}

TEST_F(IscsiServerTest, NoPingsWithAZeroInterval) {
  serve({.nop_in_interval = 0ms, .nop_timeout = 100ms});
  auto i = session();
  std::this_thread::sleep_for(400ms);
  auto r = i->nop(5, {});  // the first PDU back is the answer to this, not a ping
  ASSERT_TRUE(r.has_value());
  auto* in = std::get_if<NopIn>(&r->pdu.header);
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->itt, 5u);
  EXPECT_EQ(target_->live_connections(), 1u);
}

TEST_F(IscsiServerTest, UnsupportedOpcodeIsRejectedAndTheSessionGoesOn) {
  serve();
  auto i = session();
  SnackRequest s;
  s.exp_stat_sn = i->exp_stat_sn();
  ASSERT_TRUE(i->send(s));
  auto r = i->recv();
  ASSERT_TRUE(r.has_value());
  auto* rej = std::get_if<Reject>(&r->pdu.header);
  ASSERT_NE(rej, nullptr);
  EXPECT_EQ(r->data.size(), kBhsSize);
  EXPECT_EQ(r->data[0] & 0x3f, 0x10);
  ASSERT_TRUE(i->nop(5, {}).has_value());
}

TEST_F(IscsiServerTest, MalformedPduClosesOnlyItsConnection) {
  serve();
  auto bad = session({.isid_last = 1});
  auto good = session({.isid_last = 2});
  // A data segment far beyond the target's MaxRecvDataSegmentLength: the stream is lost.
  NopOut n;
  n.immediate = true;
  n.itt = 9;
  std::vector<uint8_t> hdr(kMaxHeaderSize);
  size_t len = build_header(hdr.data(), bad->tx(), n, kMaxDataSegmentLength);
  ASSERT_TRUE(bad->send_raw(hdr.data(), len));
  EXPECT_TRUE(bad->closed_by_peer());
  auto r = good->nop(6, {});
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(std::holds_alternative<NopIn>(r->pdu.header));
}

TEST_F(IscsiServerTest, HeaderDigestErrorClosesTheConnection) {
  serve();
  auto i = session({.digests = true});
  NopOut n;
  n.immediate = true;
  n.itt = 3;
  std::vector<uint8_t> pdu;
  append_pdu(pdu, i->tx(), n);
  pdu[kBhsSize] ^= 0xff;  // the header digest
  ASSERT_TRUE(i->send_raw(pdu.data(), pdu.size()));
  EXPECT_TRUE(i->closed_by_peer());
  EXPECT_TRUE(sluice::testing::wait_until([&] { return target_->live_connections() == 0; }));
}

// ErrorRecoveryLevel 0 cannot recover lost data: a data digest error is rejected, then the
// connection closes.
TEST_F(IscsiServerTest, DataDigestErrorRejectsAndCloses) {
  serve();
  auto i = session({.digests = true});
  NopOut n;
  n.immediate = true;
  n.itt = 3;
  std::vector<uint8_t> pdu;
  append_pdu(pdu, i->tx(), n, std::vector<uint8_t>(64, 7));
  pdu.back() ^= 0xff;  // the data digest
  ASSERT_TRUE(i->send_raw(pdu.data(), pdu.size()));
  auto r = i->recv();
  ASSERT_TRUE(r.has_value());
  auto* rej = std::get_if<Reject>(&r->pdu.header);
  ASSERT_NE(rej, nullptr);
  EXPECT_EQ(rej->reason, RejectReason::data_digest);
  EXPECT_TRUE(i->closed_by_peer());
}

}  // namespace
}  // namespace sluice::iscsi::testing
