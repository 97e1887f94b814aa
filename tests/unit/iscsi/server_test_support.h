// The iSCSI server tests' fixture: an App with two reactors, a 16 MiB malloc bdev behind LUN
// 0 of one target node, and a Target on 127.0.0.1 at an ephemeral port, open to any initiator.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "initiator_io.h"
#include "target/iscsi/iscsi.h"
#include "test_util.h"
#include "thread/thread.h"
#include "wait.h"

namespace sluice::iscsi::testing {

using namespace std::chrono_literals;
inline constexpr const char* kNode = "iqn.2026-12.io.sluice:disk0";
inline constexpr uint64_t kDiskBytes = 16u << 20;

class IscsiServerTest : public ::testing::Test {
 protected:
  IscsiServerTest() : app_(app_options()) {}

  static thread::AppOptions app_options() {
    thread::AppOptions o;
    o.cores = "0,1";  // pinning failures only warn
    o.shutdown_timeout = 5000ms;
    return o;
  }

  void SetUp() override {
    ASSERT_TRUE(app_.start().ok());
    bdev_ = sluice::testing::unique_name("iscsimem");
    auto created = bdev::create("malloc:16M", bdev_);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
  }
  void TearDown() override {
    if (target_) {
      Status st = target_->stop();
      EXPECT_TRUE(st.ok()) << st.to_string();
      EXPECT_EQ(target_->live_connections(), 0u);
      target_.reset();
    }
    if (bdev::find(bdev_)) {
      EXPECT_TRUE(bdev::unregister(bdev_).ok());
    }
    Status st = app_.shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }

  // A target with portal group 1 (127.0.0.1, an ephemeral port) and initiator group 1 (ANY
  // from ANY), no node yet.
  void start_target(GlobalOptions o = {}) {
    auto t = Target::start(std::move(o));
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    target_ = std::move(t.value());
    Status st = target_->add_portal_group(1, {net::ListenAddress::tcp_address("127.0.0.1", 0)});
    ASSERT_TRUE(st.ok()) << st.to_string();
    port_ = target_->portal_groups().at(0).portals.at(0).port;
    st = target_->add_initiator_group(1, {"ANY"}, {"ANY"});
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  // Adds `n`, reached through portal group 1 by initiator group 1 unless it maps others.
  void add_node(NodeConfig n) {
    if (n.pg_ig_maps.empty()) n.pg_ig_maps = {{1, 1}};
    Status st = target_->add_node(std::move(n));
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  // start_target() and kNode over the bdev at LUN 0.
  void serve(GlobalOptions o = {}) {
    start_target(std::move(o));
    add_node(NodeConfig{.name = kNode, .alias = "disk zero", .luns = {{0, bdev_}}});
  }

  // A Normal session logged in with `o` (the target filled in).
  std::unique_ptr<Initiator> session(LoginOptions o = {}) {
    auto i = std::make_unique<Initiator>();
    o.target = kNode;
    EXPECT_TRUE(i->connect(port_));
    EXPECT_TRUE(i->login(o)) << "login status " << std::hex << i->login_status;
    return i;
  }

  thread::App app_;
  std::string bdev_;
  std::unique_ptr<Target> target_;
  uint16_t port_ = 0;
};

// CDBs.
inline std::vector<uint8_t> rw10(uint8_t op, uint32_t lba, uint16_t blocks) {
  std::vector<uint8_t> c(16, 0);
  c[0] = op;
  for (int i = 0; i < 4; ++i) c[2 + i] = uint8_t(lba >> (24 - 8 * i));
  c[7] = uint8_t(blocks >> 8);
  c[8] = uint8_t(blocks);
  return c;
}

inline uint8_t sense_key(const std::vector<uint8_t>& s) {
  if (s.empty()) return 0xff;
  return (s[0] & 0x7f) >= 0x72 ? (s[1] & 0x0f) : (s.size() > 2 ? (s[2] & 0x0f) : 0xff);
}
inline uint8_t sense_asc(const std::vector<uint8_t>& s) {
  if (s.empty()) return 0xff;
  return (s[0] & 0x7f) >= 0x72 ? s[2] : (s.size() > 12 ? s[12] : 0xff);
}

}  // namespace sluice::iscsi::testing
