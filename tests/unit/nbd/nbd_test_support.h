// The NBD tests' fixture: an App with two reactors, a malloc bdev exported as "disk", and a
// server on a Unix socket in a temporary directory (or on 127.0.0.1, an ephemeral port).
#pragma once

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "nbd_client.h"
#include "target/nbd/nbd.h"
#include "target/nbd/session.h"
#include "temp_dir.h"
#include "thread/thread.h"
#include "wait.h"

namespace sluice::nbd::testing {

using sluice::testing::wait_until;
using namespace std::chrono_literals;

inline thread::AppOptions app_options(const char* cores) {
  thread::AppOptions o;
  o.cores = cores;  // pinning failures only warn
  o.shutdown_timeout = 5000ms;
  return o;
}

class NbdTest : public ::testing::Test {
 protected:
  explicit NbdTest(const char* cores = "0,1") : app_(app_options(cores)) {}

  void SetUp() override {
    ASSERT_TRUE(app_.start().ok());
    bdev_ = sluice::testing::unique_name("nbdmem");
    auto created = bdev::create("malloc:16M", bdev_);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    ASSERT_TRUE(export_add("disk", bdev_, false).ok());
    ASSERT_FALSE(dir_.path().empty());
    sock_ = dir_.path() + "/nbd.sock";
  }
  void TearDown() override {
    EXPECT_TRUE(stop_server().ok());
    for (auto& e : exports()) EXPECT_TRUE(export_remove(e.name).ok());
    if (bdev::find(bdev_)) {
      EXPECT_TRUE(bdev::unregister(bdev_).ok());
    }
    EXPECT_EQ(live_sessions(), 0u);
    Status st = app_.shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }

  void serve_unix(ServerOptions o = {}) {
    o.address = net::ListenAddress::unix_socket(sock_);
    Status st = start_server(o);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  uint16_t serve_tcp() {
    Status st = start_server(net::ListenAddress::tcp_address("127.0.0.1", 0));
    EXPECT_TRUE(st.ok()) << st.to_string();
    return server_address() ? server_address()->port : 0;
  }
  bool no_sessions() {
    return wait_until([] { return live_sessions() == 0; });
  }

  thread::App app_;
  std::string bdev_;
  sluice::testing::TempDir dir_;
  std::string sock_;
};

}  // namespace sluice::nbd::testing
