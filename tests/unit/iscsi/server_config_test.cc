// The iSCSI target's configuration calls: what each accepts, what it refuses and with which
// error, and what the get_* snapshots report. No login here (server_acl_test.cc).
#include "server_test_support.h"

namespace sluice::iscsi::testing {
namespace {

constexpr const char* kCfgHost = "iqn.2026-12.io.sluice:host1";
constexpr const char* kCfgSecret = "a-secret-of-16-b";

TEST_F(IscsiServerTest, StartRefusesUnsupportedOptions) {
  auto erl = Target::start(GlobalOptions{.error_recovery_level = 1});
  ASSERT_FALSE(erl.ok());
  EXPECT_EQ(erl.status().code(), Errc::not_supported);
  EXPECT_NE(erl.status().message().find("ErrorRecoveryLevel 1"), std::string::npos) << erl.status().message();
  EXPECT_FALSE(Target::start(GlobalOptions{.max_sessions = 0}).ok());
  EXPECT_FALSE(Target::start(GlobalOptions{.max_connections_per_session = 2}).ok());
  EXPECT_FALSE(Target::start(GlobalOptions{.first_burst_length = 1 << 20, .max_burst_length = 1 << 16}).ok());
  EXPECT_FALSE(Target::start(GlobalOptions{.max_recv_data_segment_length = 100}).ok());
  EXPECT_FALSE(Target::start(GlobalOptions{.accept_reactor = 9}).ok());
}

TEST_F(IscsiServerTest, PortalGroups) {
  start_target();
  Status dup = target_->add_portal_group(1, {net::ListenAddress::tcp_address("127.0.0.1", 0)});
  EXPECT_EQ(dup.code(), Errc::exists) << dup.to_string();
  EXPECT_EQ(target_->add_portal_group(0, {net::ListenAddress::tcp_address("127.0.0.1", 0)}).code(),
            Errc::invalid_argument);
  EXPECT_EQ(target_->add_portal_group(2, {}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_portal_group(2, {net::ListenAddress::unix_socket("/tmp/x.sock")}).code(),
            Errc::invalid_argument);
  // The second portal's address is taken: the call fails and the first is not kept.
  Status in_use = target_->add_portal_group(
      2, {net::ListenAddress::tcp_address("127.0.0.1", 0), net::ListenAddress::tcp_address("127.0.0.1", port_)});
  EXPECT_FALSE(in_use.ok());
  EXPECT_NE(in_use.message().find("portal group 2"), std::string::npos) << in_use.message();
  ASSERT_EQ(target_->portal_groups().size(), 1u);
  ASSERT_TRUE(target_
                  ->add_portal_group(2, {net::ListenAddress::tcp_address("127.0.0.1", 0),
                                         net::ListenAddress::tcp_address("127.0.0.1", 0)})
                  .ok());
  auto pgs = target_->portal_groups();
  ASSERT_EQ(pgs.size(), 2u);
  EXPECT_EQ(pgs[1].tag, 2);
  ASSERT_EQ(pgs[1].portals.size(), 2u);
  EXPECT_NE(pgs[1].portals[0].port, 0);
  EXPECT_NE(pgs[1].portals[0].port, pgs[1].portals[1].port);
  EXPECT_EQ(target_->delete_portal_group(7).code(), Errc::not_found);
  ASSERT_TRUE(target_->delete_portal_group(2).ok());
  EXPECT_EQ(target_->portal_groups().size(), 1u);
  // Its portals no longer accept.
  EXPECT_LT(sluice::testing::connect_loopback(pgs[1].portals[0].port), 0);
}

TEST_F(IscsiServerTest, InitiatorGroups) {
  start_target();
  EXPECT_EQ(target_->add_initiator_group(1, {"ANY"}, {"ANY"}).code(), Errc::exists);
  EXPECT_EQ(target_->add_initiator_group(0, {"ANY"}, {"ANY"}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_initiator_group(2, {}, {"ANY"}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_initiator_group(2, {"ANY"}, {}).code(), Errc::invalid_argument);
  Status name = target_->add_initiator_group(2, {"host1"}, {"ANY"});
  EXPECT_EQ(name.code(), Errc::invalid_argument);
  EXPECT_NE(name.message().find("'host1'"), std::string::npos) << name.message();
  Status mask = target_->add_initiator_group(2, {"ANY"}, {"127.0.0.1/40"});
  EXPECT_EQ(mask.code(), Errc::invalid_argument);
  EXPECT_NE(mask.message().find("127.0.0.1/40"), std::string::npos) << mask.message();
  ASSERT_TRUE(
      target_->add_initiator_group(2, {"!" + std::string(kCfgHost), "ANY"}, {"127.0.0.1/32", "[::1]/128"}).ok());
  ASSERT_TRUE(target_->initiator_group_add(2, {"iqn.2026-12.io.sluice:host2"}, {"127.0.0.0/8"}).ok());
  EXPECT_EQ(target_->initiator_group_add(3, {"ANY"}, {}).code(), Errc::not_found);
  EXPECT_EQ(target_->initiator_group_add(2, {}, {"127.0.0.0/33"}).code(), Errc::invalid_argument);
  ASSERT_TRUE(target_->initiator_group_remove(2, {"ANY"}, {"[::1]/128"}).ok());
  EXPECT_EQ(target_->initiator_group_remove(2, {"ANY"}, {}).code(), Errc::not_found);
  auto igs = target_->initiator_groups();
  ASSERT_EQ(igs.size(), 2u);
  EXPECT_EQ(igs[1].names, (std::vector<std::string>{"!" + std::string(kCfgHost), "iqn.2026-12.io.sluice:host2"}));
  EXPECT_EQ(igs[1].netmasks, (std::vector<std::string>{"127.0.0.1/32", "127.0.0.0/8"}));
  EXPECT_EQ(target_->delete_initiator_group(9).code(), Errc::not_found);
  ASSERT_TRUE(target_->delete_initiator_group(2).ok());
  EXPECT_EQ(target_->initiator_groups().size(), 1u);
}

TEST_F(IscsiServerTest, AuthGroupsAndDiscoveryAuth) {
  start_target();
  EXPECT_EQ(target_->add_auth_group(0, {}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_auth_group(1, {{.user = "u", .secret = "short"}}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_auth_group(1, {{.user = "", .secret = kCfgSecret}}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_auth_group(1, {{.user = "u", .secret = kCfgSecret, .muser = "t"}}).code(),
            Errc::invalid_argument);
  EXPECT_EQ(
      target_->add_auth_group(1, {{.user = "u", .secret = kCfgSecret, .muser = "t", .msecret = kCfgSecret}}).code(),
      Errc::invalid_argument);  // both directions with one secret
  EXPECT_EQ(
      target_->add_auth_group(1, {{.user = "u", .secret = kCfgSecret}, {.user = "u", .secret = kCfgSecret}}).code(),
      Errc::invalid_argument);
  ASSERT_TRUE(target_->add_auth_group(1, {{.user = "u", .secret = kCfgSecret}}).ok());
  EXPECT_EQ(target_->add_auth_group(1, {}).code(), Errc::exists);
  ASSERT_EQ(target_->auth_groups().size(), 1u);
  EXPECT_EQ(target_->auth_groups()[0].secrets[0].user, "u");

  EXPECT_EQ(target_->set_discovery_auth({.disable_chap = true, .require_chap = true, .chap_group = 1}).code(),
            Errc::invalid_argument);
  EXPECT_EQ(target_->set_discovery_auth({.mutual_chap = true, .chap_group = 1}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->set_discovery_auth({.require_chap = true}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->set_discovery_auth({.chap_group = 5}).code(), Errc::not_found);
  ASSERT_TRUE(target_->set_discovery_auth({.require_chap = true, .chap_group = 1}).ok());
  EXPECT_TRUE(target_->discovery_auth().require_chap);
  EXPECT_EQ(target_->delete_auth_group(1).code(), Errc::busy);
  ASSERT_TRUE(target_->set_discovery_auth({}).ok());
  EXPECT_EQ(target_->delete_auth_group(2).code(), Errc::not_found);
  EXPECT_TRUE(target_->delete_auth_group(1).ok());
}

TEST_F(IscsiServerTest, Nodes) {
  start_target();
  ASSERT_TRUE(target_->add_auth_group(3, {{.user = "u", .secret = kCfgSecret}}).ok());
  NodeConfig n{.name = "disk0",
               .alias = "zero",
               .luns = {{0, bdev_}},
               .pg_ig_maps = {{1, 1}},
               .queue_depth = 8,
               .chap = {.require_chap = true, .chap_group = 3},
               .header_digest = true};
  ASSERT_TRUE(target_->add_node(n).ok());  // named under node_base
  EXPECT_EQ(target_->add_node(n).code(), Errc::exists);
  auto nodes = target_->nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].name, "iqn.2026-12.io.sluice:disk0");
  EXPECT_EQ(nodes[0].alias, "zero");
  EXPECT_EQ(nodes[0].luns.at(0), bdev_);
  EXPECT_EQ(nodes[0].pg_ig_maps, (std::vector<PgIgMap>{{1, 1}}));
  EXPECT_EQ(nodes[0].queue_depth, 8u);
  EXPECT_TRUE(nodes[0].chap.require_chap);
  EXPECT_EQ(nodes[0].chap.chap_group, 3);
  EXPECT_TRUE(nodes[0].header_digest);

  EXPECT_EQ(target_->add_node({.name = "iqn.bad name"}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_node({.name = ""}).code(), Errc::invalid_argument);
  EXPECT_EQ(target_->add_node({.name = "d1", .pg_ig_maps = {{5, 1}}}).code(), Errc::not_found);
  EXPECT_EQ(target_->add_node({.name = "d1", .pg_ig_maps = {{1, 5}}}).code(), Errc::not_found);
  EXPECT_EQ(target_->add_node({.name = "d1", .chap = {.chap_group = 9}}).code(), Errc::not_found);
  EXPECT_EQ(target_->add_node({.name = "d1", .chap = {.mutual_chap = true, .chap_group = 3}}).code(),
            Errc::invalid_argument);
  EXPECT_EQ(target_->add_node({.name = "d1", .queue_depth = 1}).code(), Errc::invalid_argument);
  EXPECT_FALSE(target_->add_node({.name = "d1", .luns = {{0, "no-such-bdev"}}}).ok());
  EXPECT_EQ(target_->nodes().size(), 1u);  // the failures made nothing

  // Groups a node uses are not deleted under it.
  EXPECT_EQ(target_->delete_portal_group(1).code(), Errc::busy);
  EXPECT_EQ(target_->delete_initiator_group(1).code(), Errc::busy);
  EXPECT_EQ(target_->delete_auth_group(3).code(), Errc::busy);

  const std::string name = nodes[0].name;
  EXPECT_EQ(target_->add_lun(name, 0, bdev_).code(), Errc::exists);
  EXPECT_EQ(target_->add_lun("iqn.2026-12.io.sluice:none", 1, bdev_).code(), Errc::not_found);
  EXPECT_FALSE(target_->add_lun(name, 1, "no-such-bdev").ok());
  EXPECT_EQ(target_->node_add_maps(name, {{1, 7}}).code(), Errc::not_found);
  EXPECT_EQ(target_->node_remove_maps(name, {{2, 2}}).code(), Errc::not_found);
  ASSERT_TRUE(target_->node_remove_maps(name, {{1, 1}}).ok());
  EXPECT_TRUE(target_->nodes()[0].pg_ig_maps.empty());
  EXPECT_TRUE(target_->delete_portal_group(1).ok());
  EXPECT_TRUE(target_->delete_initiator_group(1).ok());
  EXPECT_EQ(target_->delete_node("iqn.2026-12.io.sluice:none").code(), Errc::not_found);
  ASSERT_TRUE(target_->delete_node(name).ok());
  EXPECT_TRUE(target_->nodes().empty());
  EXPECT_TRUE(target_->delete_auth_group(3).ok());
}

TEST_F(IscsiServerTest, CallsAfterStopAreRefused) {
  start_target();
  ASSERT_TRUE(target_->stop().ok());
  EXPECT_EQ(target_->add_portal_group(2, {net::ListenAddress::tcp_address("127.0.0.1", 0)}).code(), Errc::aborted);
}

// The fixed configuration of fixed_config.h still serves: its portal, its nodes, their CHAP.
TEST_F(IscsiServerTest, FixedConfigStillServes) {
  TargetConfig cfg;
  cfg.portal_group = {.tag = 3, .portals = {net::ListenAddress::tcp_address("127.0.0.1", 0)}};
  cfg.nodes.push_back({.name = kNode, .luns = {{0, bdev_}}, .chap = ChapCredentials{"alice", kCfgSecret}});
  cfg.nodes.push_back({.name = "iqn.2026-12.io.sluice:open"});
  auto t = Target::start(std::move(cfg));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  target_ = std::move(t.value());
  ASSERT_EQ(target_->addresses().size(), 1u);
  port_ = target_->addresses()[0].port;
  EXPECT_EQ(target_->nodes().size(), 2u);
  Initiator none;
  ASSERT_TRUE(none.connect(port_));
  EXPECT_FALSE(none.login({.target = kNode}));
  auto i = session({.chap_name = "alice", .chap_secret = kCfgSecret});
  EXPECT_NE(i->tsih, 0);
  Initiator open;
  ASSERT_TRUE(open.connect(port_));
  EXPECT_TRUE(open.login({.target = "iqn.2026-12.io.sluice:open", .isid_last = 2}));
}

}  // namespace
}  // namespace sluice::iscsi::testing
