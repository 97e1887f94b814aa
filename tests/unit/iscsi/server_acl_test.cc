// Who may log in to what: portal group and initiator group maps, names and netmasks,
// SendTargets' view, CHAP through auth groups (one-way, mutual, discovery), required
// digests, per-node queue depth and max_sessions. The test initiator is 127.0.0.1.
#include "server_test_support.h"

namespace sluice::iscsi::testing {
namespace {

constexpr const char* kAclMe = "iqn.2026-12.io.sluice:test-initiator";  // LoginOptions' default
constexpr const char* kAclOther = "iqn.2026-12.io.sluice:disk1";
constexpr const char* kAclSecret = "initiator-secret-1";
constexpr const char* kAclTargetSecret = "target-secret-0001";

uint16_t acl_login_status(uint16_t port, LoginOptions o) {
  Initiator i;
  if (!i.connect(port)) return 0xffff;
  if (i.login(o)) return 0;
  EXPECT_TRUE(i.closed_by_peer());
  return i.login_status;
}

std::string acl_discover(uint16_t port, LoginOptions o = {}) {
  Initiator i;
  EXPECT_TRUE(i.connect(port));
  EXPECT_TRUE(i.login(o)) << std::hex << i.login_status;
  auto text = i.text_request(std::string("SendTargets=All") + '\0');
  EXPECT_TRUE(text.has_value());
  return text.value_or("");
}

uint16_t add_acl_portal_group(Target& t, uint16_t tag) {
  EXPECT_TRUE(t.add_portal_group(tag, {net::ListenAddress::tcp_address("127.0.0.1", 0)}).ok());
  for (const auto& pg : t.portal_groups())
    if (pg.tag == tag) return pg.portals.at(0).port;
  return 0;
}

// A node is reached only through the portal groups it maps: elsewhere it is not found.
TEST_F(IscsiServerTest, NodeIsReachedOnlyThroughItsPortalGroups) {
  serve();
  const uint16_t port2 = add_acl_portal_group(*target_, 2);
  add_node(NodeConfig{.name = kAclOther, .pg_ig_maps = {{2, 1}}});
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0);
  EXPECT_EQ(acl_login_status(port2, {.target = kNode}), 0x0203);
  EXPECT_EQ(acl_login_status(port2, {.target = kAclOther}), 0);
  EXPECT_EQ(acl_login_status(port_, {.target = kAclOther}), 0x0203);
  // SendTargets from either portal lists each node with its own group's portals only.
  const std::string text = acl_discover(port2);
  EXPECT_NE(text.find(std::string("TargetName=") + kNode), std::string::npos) << text;
  EXPECT_NE(text.find("TargetAddress=127.0.0.1:" + std::to_string(port_) + ",1"), std::string::npos) << text;
  EXPECT_NE(text.find("TargetAddress=127.0.0.1:" + std::to_string(port2) + ",2"), std::string::npos) << text;
  EXPECT_EQ(text.find(std::to_string(port2) + ",1"), std::string::npos) << text;
  EXPECT_EQ(text.find(std::to_string(port_) + ",2"), std::string::npos) << text;
}

TEST_F(IscsiServerTest, InitiatorNamesAllowAndDeny) {
  start_target();
  ASSERT_TRUE(target_->add_initiator_group(2, {kAclMe}, {"ANY"}).ok());
  ASSERT_TRUE(target_->add_initiator_group(3, {"!" + std::string(kAclMe), "ANY"}, {"ANY"}).ok());
  add_node(NodeConfig{.name = kNode, .luns = {{0, bdev_}}, .pg_ig_maps = {{1, 2}}});
  add_node(NodeConfig{.name = kAclOther, .pg_ig_maps = {{1, 3}}});
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0);
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .initiator = "iqn.2026-12.io.sluice:stranger"}), 0x0202);
  EXPECT_EQ(acl_login_status(port_, {.target = kAclOther}), 0x0202);
  EXPECT_EQ(acl_login_status(port_, {.target = kAclOther, .initiator = "iqn.2026-12.io.sluice:stranger"}), 0);
  // Discovery shows each initiator only what it may reach.
  std::string mine = acl_discover(port_);
  EXPECT_NE(mine.find(kNode), std::string::npos) << mine;
  EXPECT_EQ(mine.find(kAclOther), std::string::npos) << mine;
  std::string theirs = acl_discover(port_, {.initiator = "iqn.2026-12.io.sluice:stranger"});
  EXPECT_EQ(theirs.find(kNode), std::string::npos) << theirs;
  EXPECT_NE(theirs.find(kAclOther), std::string::npos) << theirs;
  // A deny in one mapped group wins over an allow in another.
  ASSERT_TRUE(target_->node_add_maps(kNode, {{1, 3}}).ok());
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0x0202);
}

TEST_F(IscsiServerTest, NetmasksAllowAndDeny) {
  start_target();
  ASSERT_TRUE(target_->add_initiator_group(2, {"ANY"}, {"127.0.0.2/32", "[::1]/128"}).ok());
  add_node(NodeConfig{.name = kNode, .luns = {{0, bdev_}}, .pg_ig_maps = {{1, 2}}});
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0x0202);
  EXPECT_EQ(acl_discover(port_).find(kNode), std::string::npos);
  ASSERT_TRUE(target_->initiator_group_add(2, {}, {"127.0.0.0/8"}).ok());  // applies to the next login
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0);
  EXPECT_NE(acl_discover(port_).find(kNode), std::string::npos);
  ASSERT_TRUE(target_->initiator_group_remove(2, {}, {"127.0.0.0/8"}).ok());
  ASSERT_TRUE(target_->initiator_group_add(2, {}, {"127.0.0.1"}).ok());
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0);
}

TEST_F(IscsiServerTest, ChapSecretIsFoundByName) {
  start_target();
  ASSERT_TRUE(
      target_
          ->add_auth_group(1, {{.user = "alice", .secret = kAclSecret}, {.user = "bob", .secret = "bobs-secret-12345"}})
          .ok());
  add_node(NodeConfig{.name = kNode, .luns = {{0, bdev_}}, .chap = {.require_chap = true, .chap_group = 1}});
  add_node(NodeConfig{.name = kAclOther, .chap = {.chap_group = 1}});  // None or CHAP
  add_node(NodeConfig{.name = "iqn.2026-12.io.sluice:open", .chap = {.disable_chap = true}});
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}) >> 8, 2);
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .chap_name = "alice", .chap_secret = kAclSecret}), 0);
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .chap_name = "bob", .chap_secret = "bobs-secret-12345"}), 0);
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .chap_name = "bob", .chap_secret = kAclSecret}), 0x0201);
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .chap_name = "carol", .chap_secret = kAclSecret}), 0x0201);
  EXPECT_EQ(acl_login_status(port_, {.target = kAclOther}), 0);
  EXPECT_EQ(acl_login_status(port_, {.target = kAclOther, .chap_name = "alice", .chap_secret = kAclSecret}), 0);
  // CHAP disabled: None logs in, an offer of CHAP alone is not taken.
  EXPECT_EQ(acl_login_status(port_, {.target = "iqn.2026-12.io.sluice:open"}), 0);
  Initiator i;
  ASSERT_TRUE(i.connect(port_));
  std::string text;
  append_key(text, "InitiatorName", kAclMe);
  append_key(text, "SessionType", "Normal");
  append_key(text, "TargetName", "iqn.2026-12.io.sluice:open");
  append_key(text, "AuthMethod", "CHAP");
  auto r = i.login_step(0, 1, text, false);
  EXPECT_TRUE(!r.has_value() || i.agreed["AuthMethod"] != "CHAP");
}

// Mutual CHAP by hand: the initiator's CHAP_I/CHAP_C with its response, and the target's
// answer checked against the target secret. True if the login reached full feature phase.
bool acl_mutual_login(uint16_t port, const std::string& target, const std::string& target_secret) {
  Initiator i;
  if (!i.connect(port)) return false;
  std::string text;
  append_key(text, "InitiatorName", kAclMe);
  append_key(text, "SessionType", "Normal");
  append_key(text, "TargetName", target);
  append_key(text, "AuthMethod", "CHAP");
  if (!i.login_step(0, 1, text, false) || i.agreed["AuthMethod"] != "CHAP") return false;
  text.clear();
  append_key(text, "CHAP_A", "5");
  if (!i.login_step(0, 1, text, false)) return false;
  auto challenge = decode_binary(i.agreed["CHAP_C"], kMaxChapChallenge);
  if (!challenge) return false;
  const std::vector<uint8_t> mine(16, 0x42);
  text.clear();
  append_key(text, "CHAP_N", "alice");
  append_key(text, "CHAP_R",
             encode_hex(chap_response(uint8_t(std::stoul(i.agreed["CHAP_I"])), kAclSecret, *challenge)));
  append_key(text, "CHAP_I", "7");
  append_key(text, "CHAP_C", encode_hex(mine));
  if (!i.login_step(0, 1, text, true)) return false;
  if (i.agreed["CHAP_N"] != "tgt" || i.agreed["CHAP_R"] != encode_hex(chap_response(7, target_secret, mine)))
    return false;
  text.clear();
  append_key(text, "HeaderDigest", "None");
  append_key(text, "DataDigest", "None");
  for (int round = 0; round < 4; ++round) {
    auto r = i.login_step(1, 3, text);
    if (!r) return false;
    const auto& resp = std::get<LoginResponse>(r->pdu.header);
    if (resp.transit && resp.nsg == 3) return true;
    text.clear();
  }
  return false;
}

TEST_F(IscsiServerTest, MutualChap) {
  start_target();
  ASSERT_TRUE(
      target_->add_auth_group(1, {{.user = "alice", .secret = kAclSecret, .muser = "tgt", .msecret = kAclTargetSecret}})
          .ok());
  ASSERT_TRUE(target_->add_auth_group(2, {{.user = "alice", .secret = kAclSecret}}).ok());
  add_node(NodeConfig{
      .name = kNode, .luns = {{0, bdev_}}, .chap = {.require_chap = true, .mutual_chap = true, .chap_group = 1}});
  add_node(NodeConfig{.name = kAclOther, .chap = {.require_chap = true, .mutual_chap = true, .chap_group = 2}});
  EXPECT_TRUE(acl_mutual_login(port_, kNode, kAclTargetSecret));
  // One-way where mutual is required fails, and so does a group without the target's secret.
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .chap_name = "alice", .chap_secret = kAclSecret}), 0x0201);
  EXPECT_FALSE(acl_mutual_login(port_, kAclOther, kAclTargetSecret));
}

TEST_F(IscsiServerTest, DiscoveryAuth) {
  serve();
  ASSERT_TRUE(target_->add_auth_group(1, {{.user = "alice", .secret = kAclSecret}}).ok());
  ASSERT_TRUE(target_->set_discovery_auth({.require_chap = true, .chap_group = 1}).ok());
  EXPECT_EQ(acl_login_status(port_, {}) >> 8, 2);
  EXPECT_EQ(acl_login_status(port_, {.chap_name = "alice", .chap_secret = "wrong-secret-123"}), 0x0201);
  EXPECT_NE(acl_discover(port_, {.chap_name = "alice", .chap_secret = kAclSecret}).find(kNode), std::string::npos);
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0);  // the node's own setting: None allowed
  ASSERT_TRUE(target_->set_discovery_auth({.disable_chap = true}).ok());
  EXPECT_EQ(acl_login_status(port_, {}), 0);
}

TEST_F(IscsiServerTest, RequiredDigests) {
  start_target();
  add_node(NodeConfig{.name = kNode, .luns = {{0, bdev_}}, .header_digest = true, .data_digest = true});
  EXPECT_EQ(acl_login_status(port_, {.target = kNode}), 0x0200);
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .digests = true}), 0);
}

TEST_F(IscsiServerTest, NodeQueueDepthIsTheCmdSnWindow) {
  start_target();
  add_node(NodeConfig{.name = kNode, .luns = {{0, bdev_}}, .queue_depth = 4});
  auto i = session();
  auto r = i->nop(9, {});
  ASSERT_TRUE(r.has_value());
  auto* in = std::get_if<NopIn>(&r->pdu.header);
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->max_cmd_sn - in->exp_cmd_sn, 3u);
}

TEST_F(IscsiServerTest, MaxSessions) {
  serve({.max_sessions = 1});
  auto i = session();
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .isid_last = 2}), 0x0302);
  EXPECT_EQ(acl_login_status(port_, {}), 0x0302);
  ASSERT_TRUE(i->logout().has_value());
  i.reset();
  ASSERT_TRUE(sluice::testing::wait_until([&] { return target_->live_connections() == 0; }));
  EXPECT_EQ(acl_login_status(port_, {.target = kNode, .isid_last = 2}), 0);
}

}  // namespace
}  // namespace sluice::iscsi::testing
