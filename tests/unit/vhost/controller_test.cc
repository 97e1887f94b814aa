// vhost-user controllers: a socket per controller in the socket directory, one front end at a
// time, deletion that disconnects it; and the SPDK-named RPC methods over them.
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "daemon/daemon.h"
#include "fake_front_end.h"
#include "net/net.h"
#include "target/vhost/vhost.h"
#include "target/vhost/vhost_rpc.h"
#include "temp_dir.h"
#include "thread/thread.h"
#include "wait.h"

namespace sluice::vhost {
namespace {

using namespace std::chrono_literals;
using rpc::Json;
using testing::FakeFrontEnd;

class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest() : app_([] {
      thread::AppOptions o;
      o.cores = "0,1";
      o.shutdown_timeout = 5000ms;
      return o;
    }()) {}

  void SetUp() override {
    ASSERT_TRUE(app_.start().ok());
    bdev_ = sluice::testing::unique_name("vhostctl");
    ASSERT_TRUE(bdev::create("malloc:1M", bdev_).ok());
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_TRUE(set_socket_dir(dir_.path()).ok());
    rpc_module().add_methods(registry_);
  }
  void TearDown() override {
    rpc_module().shutdown();
    EXPECT_TRUE(controllers().empty());
    EXPECT_TRUE(bdev::unregister(bdev_).ok());
    Status st = app_.shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  std::unique_ptr<FakeFrontEnd> connect(const std::string& name) {
    auto fd = net::connect_stream(net::ListenAddress::unix_socket(dir_.file(name)), 5000);
    EXPECT_TRUE(fd.ok()) << fd.status().to_string();
    return fd.ok() ? std::make_unique<FakeFrontEnd>(*fd) : nullptr;
  }
  Json call(const std::string& method, const Json& params = nullptr) {
    Json request{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}};
    if (!params.is_null()) request["params"] = params;
    return registry_.dispatch(request);
  }
  bool connected(const std::string& name) {
    for (const ControllerInfo& c : controllers())
      if (c.name == name) return c.connected;
    return false;
  }

  thread::App app_;
  std::string bdev_;
  sluice::testing::TempDir dir_;
  rpc::Registry registry_;
};

TEST_F(ControllerTest, ServesOneFrontEndAtATimeAndDisconnectsItOnDelete) {
  ASSERT_TRUE(create_blk_controller({"vhost.0", bdev_}).ok());
  struct stat st {};
  ASSERT_EQ(stat(dir_.file("vhost.0").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto front = connect("vhost.0");
  ASSERT_TRUE(front);
  EXPECT_NE(front->get_u64(Request::get_features) & (1ull << kFeatureProtocolFeatures), 0u);
  EXPECT_TRUE(connected("vhost.0"));
  // A second front end is turned away; the first carries on.
  auto second = connect("vhost.0");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->closed_by_peer());
  EXPECT_EQ(front->get_u64(Request::get_queue_num), 16u);
  // Deleting disconnects the front end and removes the socket.
  ASSERT_TRUE(delete_controller("vhost.0").ok());
  EXPECT_TRUE(front->closed_by_peer());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("vhost.0")));
  EXPECT_EQ(delete_controller("vhost.0").code(), Errc::not_found);
}

TEST_F(ControllerTest, AFrontEndThatLeavesCanComeBack) {
  ASSERT_TRUE(create_blk_controller({"vhost.1", bdev_}).ok());
  auto front = connect("vhost.1");
  ASSERT_TRUE(front);
  (void)front->get_u64(Request::get_features);
  front.reset();
  ASSERT_TRUE(sluice::testing::wait_until([this] { return !connected("vhost.1"); }));
  front = connect("vhost.1");
  ASSERT_TRUE(front);
  EXPECT_NE(front->get_u64(Request::get_features), 0u);
}

TEST_F(ControllerTest, ListsItsConnectionsCounters) {
  ASSERT_TRUE(create_blk_controller({"vhost.3", bdev_}).ok());
  auto front = connect("vhost.3");
  ASSERT_TRUE(front);
  testing::FakeGuest guest(1 << 20, 16);
  UniqueFd kick(eventfd(0, EFD_CLOEXEC)), irq(eventfd(0, EFD_CLOEXEC));
  front->start_queue0(guest, kick.get(), irq.get());
  // A flush, then a chain with a buffer outside guest memory.
  const uint64_t hdr = guest.alloc(16), bad_hdr = guest.alloc(16), st = guest.alloc(1);
  const uint32_t flush_type = 4;  // VIRTIO_BLK_T_FLUSH
  std::memcpy(guest.at(hdr), &flush_type, 4);
  guest.add_chain(0, {{hdr, 16, false}, {st, 1, true}});
  guest.add_chain(2, {{bad_hdr, 16, false}, {testing::kGuestBase + (2 << 20), 1, true}});
  (void)eventfd_write(kick.get(), 1);
  ASSERT_TRUE(sluice::testing::wait_until([&] { return guest.used_idx() == 2; }));
  const auto list = controllers();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(list[0].connected);
  EXPECT_EQ(list[0].stats.requests, 2u);
  EXPECT_EQ(list[0].stats.bad_chains, 1u);
  EXPECT_EQ(list[0].stats.errors, 1u);
  Json rpc = call("vhost_get_controllers", {{"name", "vhost.3"}})["result"];
  EXPECT_EQ(rpc[0]["stats"]["requests"], 2);
  EXPECT_EQ(rpc[0]["sessions"].size(), 1u);
}

TEST_F(ControllerTest, RefusesBadControllers) {
  EXPECT_EQ(create_blk_controller({"", bdev_}).code(), Errc::invalid_argument);
  EXPECT_EQ(create_blk_controller({"a/b", bdev_}).code(), Errc::invalid_argument);
  EXPECT_EQ(create_blk_controller({"..", bdev_}).code(), Errc::invalid_argument);
  EXPECT_EQ(create_blk_controller({"x", bdev_, 0}).code(), Errc::invalid_argument);
  EXPECT_EQ(create_blk_controller({"x", "no-such-bdev"}).code(), Errc::not_found);
  ASSERT_TRUE(create_blk_controller({"x", bdev_}).ok());
  EXPECT_EQ(create_blk_controller({"x", bdev_}).code(), Errc::exists);
  EXPECT_EQ(set_socket_dir(dir_.file("missing")).code(), Errc::not_found);
}

TEST_F(ControllerTest, RpcMethodsWithSpdksNames) {
  Json made = call("vhost_create_blk_controller", {{"ctrlr", "vhost.2"}, {"dev_name", bdev_}, {"readonly", true}});
  ASSERT_EQ(made["result"], true) << made.dump();
  Json list = call("vhost_get_controllers")["result"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["ctrlr"], "vhost.2");
  EXPECT_EQ(list[0]["socket"], dir_.file("vhost.2"));
  EXPECT_EQ(list[0]["backend_specific"]["block"]["bdev"], bdev_);
  EXPECT_EQ(list[0]["backend_specific"]["block"]["readonly"], true);
  EXPECT_TRUE(call("vhost_get_controllers", {{"name", "nope"}}).contains("error"));
  EXPECT_TRUE(call("vhost_create_blk_controller", {{"ctrlr", "y"}, {"dev_name", bdev_}, {"packed_ring", true}}).contains("error"));
  EXPECT_TRUE(call("vhost_create_blk_controller", {{"ctrlr", "y"}, {"dev_name", bdev_}, {"bogus", 1}}).contains("error"));
  // save_config recreates it.
  Json saved = registry_.save_config();
  bool found = false;
  for (const Json& sub : saved["subsystems"])
    if (sub["subsystem"] == "vhost_blk") {
      ASSERT_EQ(sub["config"].size(), 1u);
      EXPECT_EQ(sub["config"][0]["method"], "vhost_create_blk_controller");
      EXPECT_EQ(sub["config"][0]["params"]["ctrlr"], "vhost.2");
      EXPECT_EQ(sub["config"][0]["params"]["dev_name"], bdev_);
      found = true;
    }
  EXPECT_TRUE(found) << saved.dump();
  // Coalescing, shown in the listing and saved after the controller.
  EXPECT_EQ(call("vhost_controller_set_coalescing", {{"ctrlr", "vhost.2"}, {"delay_base_us", 50}, {"iops_threshold", 1000}})["result"],
            true);
  EXPECT_TRUE(call("vhost_controller_set_coalescing", {{"ctrlr", "nope"}, {"delay_base_us", 50}, {"iops_threshold", 1}})
                  .contains("error"));
  EXPECT_TRUE(call("vhost_controller_set_coalescing", {{"ctrlr", "vhost.2"}, {"delay_base_us", 2000000}, {"iops_threshold", 1}})
                  .contains("error"));
  list = call("vhost_get_controllers")["result"];
  EXPECT_EQ(list[0]["delay_base_us"], 50);
  EXPECT_EQ(list[0]["iops_threshold"], 1000);
  saved = registry_.save_config();
  for (const Json& sub : saved["subsystems"])
    if (sub["subsystem"] == "vhost_blk") {
      ASSERT_EQ(sub["config"].size(), 2u);
      EXPECT_EQ(sub["config"][1]["method"], "vhost_controller_set_coalescing");
      EXPECT_EQ(sub["config"][1]["params"]["delay_base_us"], 50);
    }
  EXPECT_EQ(call("vhost_delete_controller", {{"ctrlr", "vhost.2"}})["result"], true);
  EXPECT_TRUE(call("vhost_delete_controller", {{"ctrlr", "vhost.2"}}).contains("error"));
}

TEST_F(ControllerTest, AdaptivePollingIsSetByRpcAndSavedBeforeTheControllers) {
  ASSERT_EQ(max_poll_spin_us(), kDefaultMaxPollSpinUs);
  EXPECT_TRUE(call("vhost_set_adaptive_polling", {{"max_spin_us", kMaxPollSpinUs + 1}}).contains("error"));
  EXPECT_TRUE(call("vhost_set_adaptive_polling", {}).contains("error"));
  EXPECT_EQ(call("vhost_set_adaptive_polling", {{"max_spin_us", 20}})["result"], true);
  EXPECT_EQ(max_poll_spin_us(), 20u);
  ASSERT_EQ(call("vhost_create_blk_controller", {{"ctrlr", "vhost.3"}, {"dev_name", bdev_}})["result"], true);
  const Json saved = registry_.save_config();
  bool found = false;
  for (const Json& sub : saved["subsystems"])
    if (sub["subsystem"] == "vhost_blk") {
      ASSERT_EQ(sub["config"].size(), 2u) << sub.dump();
      EXPECT_EQ(sub["config"][0]["method"], "vhost_set_adaptive_polling");
      EXPECT_EQ(sub["config"][0]["params"]["max_spin_us"], 20);
      EXPECT_EQ(sub["config"][1]["method"], "vhost_create_blk_controller");
      found = true;
    }
  EXPECT_TRUE(found) << saved.dump();
  EXPECT_EQ(call("vhost_set_adaptive_polling", {{"max_spin_us", kDefaultMaxPollSpinUs}})["result"], true);
  EXPECT_EQ(call("vhost_delete_controller", {{"ctrlr", "vhost.3"}})["result"], true);
}

TEST_F(ControllerTest, ScsiControllersAndTheirTargetsWithSpdksMethods) {
  ASSERT_EQ(call("vhost_create_scsi_controller", {{"ctrlr", "scsi.1"}, {"cpumask", "0x1"}})["result"], true);
  EXPECT_EQ(call("vhost_scsi_controller_add_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", -1}, {"bdev_name", bdev_}})["result"], 0);
  EXPECT_EQ(call("vhost_scsi_controller_add_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", 3}, {"bdev_name", bdev_}})["result"], 3);
  // Errors: no such controller, a bad slot, a slot in use, no such bdev, a blk controller.
  EXPECT_TRUE(call("vhost_scsi_controller_add_target", {{"ctrlr", "nope"}, {"scsi_target_num", 1}, {"bdev_name", bdev_}}).contains("error"));
  EXPECT_TRUE(call("vhost_scsi_controller_add_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", 8}, {"bdev_name", bdev_}}).contains("error"));
  EXPECT_TRUE(call("vhost_scsi_controller_add_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", -2}, {"bdev_name", bdev_}}).contains("error"));
  EXPECT_TRUE(call("vhost_scsi_controller_add_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", 3}, {"bdev_name", bdev_}}).contains("error"));
  EXPECT_TRUE(call("vhost_scsi_controller_add_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", 4}, {"bdev_name", "no-such"}}).contains("error"));
  EXPECT_TRUE(call("vhost_scsi_controller_add_target", {{"ctrlr", "scsi.1"}, {"bdev_name", bdev_}}).contains("error"));
  EXPECT_EQ(scsi_controller_add_target("nope", 0, bdev_).status().code(), Errc::not_found);
  EXPECT_EQ(scsi_controller_add_target("scsi.1", 3, bdev_).status().code(), Errc::exists);
  EXPECT_EQ(scsi_controller_add_target("scsi.1", 8, bdev_).status().code(), Errc::invalid_argument);
  EXPECT_EQ(scsi_controller_add_target("scsi.1", 4, "no-such").status().code(), Errc::not_found);
  ASSERT_TRUE(create_blk_controller({"blk.1", bdev_}).ok());
  EXPECT_EQ(scsi_controller_add_target("blk.1", 0, bdev_).status().code(), Errc::invalid_argument);
  EXPECT_EQ(create_scsi_controller({"blk.1"}).code(), Errc::exists);
  EXPECT_EQ(create_scsi_controller({"s", 0}).code(), Errc::invalid_argument);
  // The listing: SPDK's backend_specific.scsi.
  Json list = call("vhost_get_controllers", {{"name", "scsi.1"}})["result"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["socket"], dir_.file("scsi.1"));
  const Json scsi = list[0]["backend_specific"]["scsi"];
  ASSERT_EQ(scsi.size(), 2u) << list.dump();
  EXPECT_EQ(scsi[0]["target_name"], "Target 0");
  EXPECT_EQ(scsi[0]["id"], 0);
  EXPECT_EQ(scsi[0]["scsi_dev_num"], 0);
  EXPECT_EQ(scsi[0]["luns"][0]["id"], 0);
  EXPECT_EQ(scsi[0]["luns"][0]["bdev_name"], bdev_);
  EXPECT_EQ(scsi[1]["scsi_dev_num"], 3);
  // save_config recreates the controller and its targets, which load back as they were.
  EXPECT_EQ(call("vhost_controller_set_coalescing", {{"ctrlr", "scsi.1"}, {"delay_base_us", 20}, {"iops_threshold", 100}})["result"], true);
  Json saved = registry_.save_config();
  Json config;
  for (const Json& sub : saved["subsystems"])
    if (sub["subsystem"] == "vhost_scsi") config = sub["config"];
  ASSERT_EQ(config.size(), 4u) << saved.dump();
  EXPECT_EQ(config[0]["method"], "vhost_create_scsi_controller");
  EXPECT_EQ(config[1]["method"], "vhost_scsi_controller_add_target");
  EXPECT_EQ(config[1]["params"]["scsi_target_num"], 0);
  EXPECT_EQ(config[2]["params"]["scsi_target_num"], 3);
  EXPECT_EQ(config[3]["method"], "vhost_controller_set_coalescing");
  EXPECT_EQ(call("vhost_delete_controller", {{"ctrlr", "scsi.1"}})["result"], true);
  for (const Json& c : config) ASSERT_TRUE(call(c["method"], c["params"]).contains("result")) << c.dump();
  list = call("vhost_get_controllers", {{"name", "scsi.1"}})["result"];
  EXPECT_EQ(list[0]["backend_specific"]["scsi"], scsi);
  EXPECT_EQ(list[0]["delay_base_us"], 20);
  // Removing targets.
  EXPECT_EQ(call("vhost_scsi_controller_remove_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", 3}})["result"], true);
  EXPECT_TRUE(call("vhost_scsi_controller_remove_target", {{"ctrlr", "scsi.1"}, {"scsi_target_num", 3}}).contains("error"));
  EXPECT_TRUE(call("vhost_scsi_controller_remove_target", {{"ctrlr", "nope"}, {"scsi_target_num", 0}}).contains("error"));
  EXPECT_EQ(scsi_controller_remove_target("scsi.1", 9).code(), Errc::invalid_argument);
  EXPECT_EQ(call("vhost_get_controllers", {{"name", "scsi.1"}})["result"][0]["backend_specific"]["scsi"].size(), 1u);
  EXPECT_EQ(call("vhost_delete_controller", {{"ctrlr", "scsi.1"}})["result"], true);
  EXPECT_EQ(call("vhost_delete_controller", {{"ctrlr", "blk.1"}})["result"], true);
}

}  // namespace
}  // namespace sluice::vhost
