// The daemon's framework and bdev methods, called through the registry as a client's
// request would be (the server test covers the socket).
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "daemon/daemon.h"
#include "temp_file.h"

namespace sluice::daemon {
namespace {

using rpc::Json;

class DaemonMethods : public ::testing::Test {
 protected:
  DaemonMethods() {
    for (const Module& m : {framework_module({0}), bdev_module(), lvol_module()}) m.add_methods(registry_);
  }
  ~DaemonMethods() override { shutdown(); }
  void shutdown() {
    lvol_module().shutdown();
    delete_created_bdevs();
  }
  Json call(const std::string& method, const Json& params = nullptr) {
    Json request{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}};
    if (!params.is_null()) request["params"] = params;
    return registry_.dispatch(request);
  }
  rpc::Registry registry_;
};

TEST_F(DaemonMethods, VersionAndMethodList) {
  Json v = call("spdk_get_version");
  EXPECT_TRUE(v["result"]["version"].get<std::string>().starts_with("sluice "));
  EXPECT_EQ(call("sluice_get_version")["result"], v["result"]);
  Json methods = call("rpc_get_methods")["result"];
  for (const char* m : {"bdev_malloc_create", "bdev_get_bdevs", "save_config", "framework_get_reactors"})
    EXPECT_NE(std::find(methods.begin(), methods.end(), m), methods.end()) << m;
}

TEST_F(DaemonMethods, MallocCreateDescribeDelete) {
  Json made = call("bdev_malloc_create", {{"name", "Malloc0"}, {"num_blocks", 2048}, {"block_size", 4096}});
  ASSERT_EQ(made["result"], "Malloc0") << made.dump();
  Json list = call("bdev_get_bdevs", {{"name", "Malloc0"}})["result"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["block_size"], 4096);
  EXPECT_EQ(list[0]["num_blocks"], 2048);
  EXPECT_EQ(list[0]["product_name"], "malloc");
  EXPECT_TRUE(list[0]["supported_io_types"]["write"].get<bool>());

  Json dup = call("bdev_malloc_create", {{"name", "Malloc0"}, {"num_blocks", 8}});
  EXPECT_TRUE(dup.contains("error")) << dup.dump();
  EXPECT_EQ(call("bdev_null_delete", {{"name", "Malloc0"}})["error"]["code"], rpc::kInvalidParams);
  EXPECT_EQ(call("bdev_malloc_delete", {{"name", "Malloc0"}})["result"], true);
  EXPECT_EQ(call("bdev_get_bdevs", {{"name", "Malloc0"}})["error"]["code"], -19);
  EXPECT_EQ(call("bdev_malloc_delete", {{"name", "Malloc0"}})["error"]["code"], -19);
}

TEST_F(DaemonMethods, BadParamsAreRefusedBeforeAnythingIsMade) {
  const size_t before = bdev::list().size();
  EXPECT_EQ(call("bdev_malloc_create", {{"num_blocks", 8}, {"block_size", 1000}})["error"]["code"], rpc::kInvalidParams);
  EXPECT_EQ(call("bdev_malloc_create", {{"num_blocks", 0}})["error"]["code"], rpc::kInvalidParams);
  EXPECT_EQ(call("bdev_malloc_create", {{"num_blocks", 8}, {"nmae", "x"}})["error"]["code"], rpc::kInvalidParams);
  EXPECT_EQ(call("bdev_malloc_create", {{"num_blocks", 8}, {"name", "a?b"}})["error"]["code"], rpc::kInvalidParams);
  EXPECT_EQ(call("bdev_uring_create", {{"name", "u"}})["error"]["code"], rpc::kInvalidParams);
  Json missing_file = call("bdev_uring_create", {{"name", "u"}, {"filename", "/nonexistent/sluice.img"}});
  EXPECT_TRUE(missing_file.contains("error"));
  EXPECT_EQ(bdev::list().size(), before);
}

TEST_F(DaemonMethods, IostatCountsIo) {
  ASSERT_EQ(call("bdev_malloc_create", {{"name", "M1"}, {"num_blocks", 64}, {"block_size", 512}})["result"], "M1");
  // Creation itself reads the device (the examine step looks for an lvol store): count from here.
  const Json before = call("bdev_get_iostat", {{"name", "M1"}})["result"]["bdevs"][0];
  {
    auto desc = bdev::open("M1");
    ASSERT_TRUE(desc.ok());
    auto ch = (*desc)->get_channel();
    ASSERT_TRUE(ch.ok());
    std::vector<char> buf(4096, 'x');
    bdev::SyncIo io{**desc, *ch};
    ASSERT_TRUE(io.write(buf.data(), 0, 8).ok());
    ASSERT_TRUE(io.read(buf.data(), 0, 8).ok());
    ASSERT_TRUE(io.read(buf.data(), 8, 8).ok());
    ASSERT_TRUE((*desc)->put_channel(*ch).ok());
  }
  Json stat = call("bdev_get_iostat", {{"name", "M1"}})["result"];
  ASSERT_EQ(stat["bdevs"].size(), 1u);
  EXPECT_EQ(stat["bdevs"][0]["num_write_ops"].get<uint64_t>() - before["num_write_ops"].get<uint64_t>(), 1u);
  EXPECT_EQ(stat["bdevs"][0]["num_read_ops"].get<uint64_t>() - before["num_read_ops"].get<uint64_t>(), 2u);
  EXPECT_EQ(stat["bdevs"][0]["bytes_read"].get<uint64_t>() - before["bytes_read"].get<uint64_t>(), 8192u);
  EXPECT_GT(stat["tick_rate"].get<uint64_t>(), 0u);
}

TEST_F(DaemonMethods, ErrorBdevInjects) {
  ASSERT_EQ(call("bdev_malloc_create", {{"name", "Base"}, {"num_blocks", 64}})["result"], "Base");
  ASSERT_EQ(call("bdev_error_create", {{"base_name", "Base"}})["result"], "EE_Base");
  EXPECT_EQ(call("bdev_error_inject_error", {{"name", "EE_Base"}, {"io_type", "bogus"}, {"error_type", "failure"}})["error"]["code"],
            rpc::kInvalidParams);
  ASSERT_EQ(call("bdev_error_inject_error", {{"name", "EE_Base"}, {"io_type", "read"}, {"error_type", "failure"}, {"num", 1}})["result"],
            true);
  auto desc = bdev::open("EE_Base");
  ASSERT_TRUE(desc.ok());
  auto ch = (*desc)->get_channel();
  ASSERT_TRUE(ch.ok());
  std::vector<char> buf(512);
  bdev::SyncIo io{**desc, *ch};
  EXPECT_FALSE(io.read(buf.data(), 0, 1).ok());  // the injected failure
  EXPECT_TRUE(io.read(buf.data(), 0, 1).ok());   // spent
  ASSERT_TRUE((*desc)->put_channel(*ch).ok());
}

TEST_F(DaemonMethods, QosLimits) {
  ASSERT_EQ(call("bdev_malloc_create", {{"name", "Q"}, {"num_blocks", 64}})["result"], "Q");
  EXPECT_EQ(call("bdev_set_qos_limit", {{"name", "Q"}})["error"]["code"], rpc::kInvalidParams);
  EXPECT_EQ(call("bdev_set_qos_limit", {{"name", "nope"}, {"rw_ios_per_sec", 1}})["error"]["code"], -19);
  EXPECT_EQ(call("bdev_set_qos_limit", {{"name", "Q"}, {"rw_ios_per_sec", -5}})["error"]["code"], rpc::kInvalidParams);
  ASSERT_EQ(call("bdev_set_qos_limit", {{"name", "Q"}, {"rw_ios_per_sec", 20000}, {"w_mbytes_per_sec", 100}})["result"], true);
  // Absent limits stay as they were; 0 removes one.
  ASSERT_EQ(call("bdev_set_qos_limit", {{"name", "Q"}, {"r_mbytes_per_sec", 50}, {"rw_ios_per_sec", 0}})["result"], true);
  const Json limits = call("bdev_get_bdevs", {{"name", "Q"}})["result"][0]["assigned_rate_limits"];
  EXPECT_EQ(limits, (Json{{"rw_ios_per_sec", 0}, {"rw_mbytes_per_sec", 0}, {"r_mbytes_per_sec", 50}, {"w_mbytes_per_sec", 100}}));
  EXPECT_EQ(bdev::find("Q")->qos_limits().w_bytes_per_sec, 100u << 20);
}

TEST_F(DaemonMethods, SaveConfigRecreatesTheDevices) {
  ASSERT_EQ(call("bdev_malloc_create", {{"name", "A"}, {"num_blocks", 32}, {"block_size", 4096}})["result"], "A");
  ASSERT_EQ(call("bdev_set_qos_limit", {{"name", "A"}, {"rw_ios_per_sec", 1000}})["result"], true);
  ASSERT_EQ(call("bdev_null_create", {{"num_blocks", 100}})["result"], "null0");
  ASSERT_EQ(call("bdev_error_create", {{"base_name", "A"}})["result"], "EE_A");
  const Json saved = call("save_config")["result"];
  delete_created_bdevs();
  EXPECT_FALSE(bdev::find("A"));
  ASSERT_TRUE(registry_.load_config(saved).ok());
  for (const char* name : {"A", "null0", "EE_A"}) EXPECT_TRUE(bdev::find(name)) << name;
  EXPECT_EQ(bdev::find("A")->geometry().block_size, 4096u);
  EXPECT_EQ(bdev::find("A")->qos_limits().rw_ios_per_sec, 1000u);
  EXPECT_EQ(call("save_config")["result"], saved);
}

// A config as spdk_tgt's save_config writes it (its parameters at their defaults) loads as it is.
TEST_F(DaemonMethods, AnSpdkConfigLoadsUnchanged) {
  const Json config = Json::parse(R"({"subsystems": [
    {"subsystem": "bdev", "config": [
      {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 8192, "block_size": 512,
        "physical_block_size": 512, "uuid": "0a8e9c9e-7f1c-4b0e-9a5f-8d3f7e2a1b3c", "optimal_io_boundary": 0,
        "md_size": 0, "dif_type": 0, "dif_is_head_of_md": false, "dif_pi_format": 0}},
      {"method": "bdev_null_create", "params": {"name": "Null0", "num_blocks": 1024, "block_size": 4096,
        "physical_block_size": 4096, "md_size": 0, "md_interleave": false, "dif_type": 0, "dif_is_head_of_md": false}},
      {"method": "bdev_wait_for_examine"}]}]})");
  Status st = registry_.load_config(config);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(bdev::find("Malloc0"));
  EXPECT_TRUE(bdev::find("Null0"));
  // A feature Sluice lacks is refused, naming it.
  Json md = call("bdev_malloc_create", {{"name", "M"}, {"num_blocks", 8}, {"md_size", 8}});
  EXPECT_NE(md["error"]["message"].get<std::string>().find("md_size"), std::string::npos);
}

TEST_F(DaemonMethods, LogicalVolumes) {
  testing::TempFile image(64 << 20);
  ASSERT_FALSE(image.path().empty());
  ASSERT_EQ(call("bdev_uring_create", {{"name", "Base"}, {"filename", image.path()}})["result"], "Base");
  Json uuid = call("bdev_lvol_create_lvstore", {{"bdev_name", "Base"}, {"lvs_name", "pool"}, {"cluster_sz", 1 << 20}});
  ASSERT_TRUE(uuid["result"].is_string()) << uuid.dump();
  // Only a blank device: a second store over it is refused.
  EXPECT_TRUE(call("bdev_lvol_create_lvstore", {{"bdev_name", "Base"}, {"lvs_name", "again"}}).contains("error"));

  EXPECT_EQ(call("bdev_lvol_create", {{"lvol_name", "db"}, {"size_in_mib", 8}})["error"]["code"], rpc::kInvalidParams);
  EXPECT_EQ(call("bdev_lvol_create", {{"lvol_name", "db"}, {"size_in_mib", 8}, {"size", 8}, {"lvs_name", "pool"}})["error"]["code"],
            rpc::kInvalidParams);
  ASSERT_EQ(call("bdev_lvol_create", {{"lvol_name", "db"}, {"size_in_mib", 8}, {"lvs_name", "pool"}, {"thin_provision", true}})["result"],
            "pool/db");
  ASSERT_EQ(call("bdev_lvol_create", {{"lvol_name", "log"}, {"size", 4 << 20}, {"uuid", uuid["result"]}})["result"], "pool/log");
  ASSERT_EQ(call("bdev_lvol_snapshot", {{"lvol_name", "pool/db"}, {"snapshot_name", "snap"}})["result"], "pool/snap");
  ASSERT_EQ(call("bdev_lvol_clone", {{"snapshot_name", "pool/snap"}, {"clone_name", "copy"}})["result"], "pool/copy");
  ASSERT_EQ(call("bdev_lvol_resize", {{"name", "pool/log"}, {"size_in_mib", 16}})["result"], true);
  EXPECT_EQ(bdev::find("pool/log")->geometry().size_bytes(), 16u << 20);
  ASSERT_EQ(call("bdev_lvol_delete", {{"name", "pool/copy"}})["result"], true);
  EXPECT_EQ(call("bdev_lvol_delete", {{"name", "pool/copy"}})["error"]["code"], -19);
  EXPECT_EQ(call("bdev_lvol_delete", {{"name", "nostore/x"}})["error"]["code"], -19);

  Json stores = call("bdev_lvol_get_lvstores")["result"];
  ASSERT_EQ(stores.size(), 1u);
  EXPECT_EQ(stores[0]["name"], "pool");
  EXPECT_EQ(stores[0]["base_bdev"], "Base");
  EXPECT_EQ(stores[0]["cluster_size"], 1 << 20);
  EXPECT_EQ(call("bdev_lvol_get_lvstores", {{"lvs_name", "pool"}})["result"][0]["uuid"], uuid["result"]);

  // Restart from the saved config: the base device comes back and its store with it.
  const Json saved = call("save_config")["result"];
  shutdown();
  EXPECT_FALSE(bdev::find("pool/db"));
  ASSERT_TRUE(registry_.load_config(saved).ok());
  for (const char* name : {"pool/db", "pool/log", "pool/snap"}) EXPECT_TRUE(bdev::find(name)) << name;
  EXPECT_EQ(bdev::find("pool/log")->geometry().size_bytes(), 16u << 20);
}

}  // namespace
}  // namespace sluice::daemon
