// Configuration changes while sessions run: nodes added and deleted under a logged-in
// session, LUNs added once a node is idle, and the connections listing.
#include <atomic>
#include <thread>

#include "server_test_support.h"

namespace sluice::iscsi::testing {
namespace {

constexpr const char* kRtSecond = "iqn.2026-12.io.sluice:disk1";

bool rt_unit_ready(Initiator& i) {
  uint8_t tur[16] = {};
  auto r = run_command(i, tur, 0, nullptr);
  return r.ok && r.status == 0;
}

TEST_F(IscsiServerTest, NodeAddedWhileASessionRuns) {
  serve();
  auto first = session();
  ASSERT_TRUE(target_->add_node(NodeConfig{.name = kRtSecond, .luns = {{0, bdev_}}, .pg_ig_maps = {{1, 1}}}).ok());
  Initiator d;
  ASSERT_TRUE(d.connect(port_));
  ASSERT_TRUE(d.login({}));
  auto text = d.text_request(std::string("SendTargets=All") + '\0');
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find(kNode), std::string::npos) << *text;
  EXPECT_NE(text->find(kRtSecond), std::string::npos) << *text;
  Initiator second;
  ASSERT_TRUE(second.connect(port_));
  ASSERT_TRUE(second.login({.target = kRtSecond, .isid_last = 2})) << std::hex << second.login_status;
  EXPECT_TRUE(rt_unit_ready(second));
  EXPECT_TRUE(rt_unit_ready(*first));
}

TEST_F(IscsiServerTest, DeleteNodeClosesItsSessionsOnly) {
  serve();
  ASSERT_TRUE(target_->add_node(NodeConfig{.name = kRtSecond, .pg_ig_maps = {{1, 1}}}).ok());
  auto doomed = session({.isid_last = 1});
  auto other = std::make_unique<Initiator>();
  ASSERT_TRUE(other->connect(port_));
  ASSERT_TRUE(other->login({.target = kRtSecond, .isid_last = 2}));
  ASSERT_TRUE(target_->delete_node(kNode).ok());
  EXPECT_TRUE(doomed->closed_by_peer());
  EXPECT_TRUE(other->nop(4, {}).has_value());
  Initiator late;
  ASSERT_TRUE(late.connect(port_));
  EXPECT_FALSE(late.login({.target = kNode, .isid_last = 3}));
  EXPECT_EQ(late.login_status, 0x0203);
  EXPECT_EQ(target_->nodes().size(), 1u);
  // The groups it used can go once no node maps them.
  ASSERT_TRUE(target_->delete_node(kRtSecond).ok());
  EXPECT_TRUE(other->closed_by_peer());
  EXPECT_TRUE(target_->delete_initiator_group(1).ok());
  EXPECT_TRUE(target_->delete_portal_group(1).ok());
}

TEST_F(IscsiServerTest, LunsAreAddedWhileTheNodeIsIdle) {
  start_target();
  add_node(NodeConfig{.name = kNode});
  auto i = session();
  Status busy = target_->add_lun(kNode, 0, bdev_);
  EXPECT_EQ(busy.code(), Errc::busy) << busy.to_string();
  ASSERT_TRUE(i->logout().has_value());
  i.reset();
  ASSERT_TRUE(sluice::testing::wait_until([&] { return target_->live_connections() == 0; }));
  ASSERT_TRUE(target_->add_lun(kNode, 0, bdev_).ok());
  EXPECT_EQ(target_->nodes().at(0).luns.at(0), bdev_);
  auto j = session();
  EXPECT_TRUE(rt_unit_ready(*j));
}

TEST_F(IscsiServerTest, ConnectionsAreListed) {
  serve();
  auto i = session({.isid_last = 5});
  Initiator d;
  ASSERT_TRUE(d.connect(port_));
  ASSERT_TRUE(d.login({.initiator = "iqn.2026-12.io.sluice:finder", .isid_last = 6}));
  auto conns = target_->connections();
  ASSERT_TRUE(conns.ok()) << conns.status().to_string();
  ASSERT_EQ(conns.value().size(), 2u);
  const ConnectionInfo* normal = nullptr;
  const ConnectionInfo* discovery = nullptr;
  for (const ConnectionInfo& c : conns.value()) (c.session_type == "normal" ? normal : discovery) = &c;
  ASSERT_NE(normal, nullptr);
  ASSERT_NE(discovery, nullptr);
  EXPECT_EQ(normal->initiator_name, "iqn.2026-12.io.sluice:test-initiator");
  EXPECT_EQ(normal->target_node, kNode);
  EXPECT_EQ(normal->pg_tag, 1);
  EXPECT_EQ(normal->portal, "127.0.0.1:" + std::to_string(port_));
  EXPECT_EQ(normal->isid, "800000000005");
  EXPECT_EQ(normal->tsih, i->tsih);
  EXPECT_EQ(normal->initiator_address.rfind("127.0.0.1:", 0), 0u) << normal->initiator_address;
  EXPECT_EQ(discovery->session_type, "discovery");
  EXPECT_EQ(discovery->initiator_name, "iqn.2026-12.io.sluice:finder");
  EXPECT_TRUE(discovery->target_node.empty());
}

// RFC 7143 6.3.5: a login from the same initiator port (name and ISID) to the same node
// replaces the old session. connections() asks every reactor after the close was sent to
// them, so a session it spared answers afterwards.
TEST_F(IscsiServerTest, SameIsidReinstatesTheSession) {
  serve();
  auto old = session({.isid_last = 9});
  auto fresh = session({.isid_last = 9});
  EXPECT_TRUE(old->closed_by_peer());
  auto other = session({.initiator = "iqn.2026-12.io.sluice:other-host", .isid_last = 9});
  ASSERT_TRUE(target_->connections().ok());
  EXPECT_TRUE(fresh->nop(3, {}).has_value());
  EXPECT_TRUE(other->nop(3, {}).has_value());
}

TEST_F(IscsiServerTest, DuplicatedIsidAllowed) {
  serve(GlobalOptions{.allow_duplicated_isid = true});
  auto a = session({.isid_last = 9});
  auto b = session({.isid_last = 9});
  ASSERT_TRUE(target_->connections().ok());
  EXPECT_TRUE(a->nop(3, {}).has_value());
  EXPECT_TRUE(b->nop(3, {}).has_value());
}

// Logins race with changes from this thread; every login either succeeds or fails cleanly,
// and the target stops with nothing left.
TEST_F(IscsiServerTest, ChangesDuringLogins) {
  serve();
  std::atomic<bool> done{false};
  std::thread logins([&] {
    for (uint8_t n = 1; n <= 20 && !done.load(); ++n) {
      Initiator i;
      if (!i.connect(port_)) continue;
      if (i.login({.target = n % 2 ? kNode : kRtSecond, .isid_last = n})) (void)i.logout();
    }
  });
  for (int round = 0; round < 10; ++round) {
    EXPECT_TRUE(target_->add_node(NodeConfig{.name = kRtSecond, .pg_ig_maps = {{1, 1}}}).ok());
    EXPECT_TRUE(target_->add_initiator_group(2, {"ANY"}, {"127.0.0.1/32"}).ok());
    EXPECT_TRUE(target_->node_add_maps(kRtSecond, {{1, 2}}).ok());
    EXPECT_TRUE(target_->node_remove_maps(kRtSecond, {{1, 2}}).ok());
    EXPECT_TRUE(target_->delete_initiator_group(2).ok());
    EXPECT_TRUE(target_->delete_node(kRtSecond).ok());
  }
  done = true;
  logins.join();
  EXPECT_TRUE(target_->connections().ok());
}

}  // namespace
}  // namespace sluice::iscsi::testing
