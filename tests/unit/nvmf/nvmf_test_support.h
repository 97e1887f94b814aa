// The NVMe-oF core's tests: an App with two reactors, a Target homed on reactor 0 with one
// subsystem over a malloc bdev, and Conn, a stand-in for a transport connection: a
// QueuePair on a chosen reactor that runs one command at a time (or leaves one out, for
// AERs). Every wait is bounded.
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "env/env.h"
#include "nvme/nvme_spec.h"
#include "target/nvmf/nvmf.h"
#include "thread/thread.h"
#include "wait.h"

namespace sluice::nvmf::testing {

namespace sp = nvme::spec;
using sluice::testing::wait_until;
using namespace std::chrono_literals;

inline constexpr const char* kSubnqn = "nqn.2026-12.io.sluice:disk";
inline constexpr const char* kHostnqn = "nqn.2026-12.io.sluice:host-a";
inline constexpr uint32_t kHome = 0;
inline constexpr uint32_t kBlockSize = 512;
inline constexpr uint64_t kBlocks = (16u << 20) / kBlockSize;

// Runs fn() on reactor `r` and waits for it.
template <typename F>
bool run_on(uint32_t r, F fn) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  Status st = thread::send_message(r, [fn, done]() mutable {
    fn();
    done->store(true);
  });
  if (!st.ok()) return false;
  return wait_until([&] { return done->load(); });
}

inline uint16_t sc(uint16_t status) { return sp::status_sc(status); }
inline uint16_t sct(uint16_t status) { return sp::status_sct(status); }

// One command with its DMA buffer.
struct Cmd {
  Request req;
  env::DmaBuffer buf;
  std::atomic<bool> done{false};

  // A fabrics command carries its FCTYPE where NSID would be.
  explicit Cmd(uint8_t opc, size_t bytes = 0, uint32_t nsid = 0) {
    req.sqe.opc = opc;
    req.sqe.nsid = nsid;
    if (bytes > 0) {
      buf = env::DmaBuffer::zeroed(bytes);
      req.data = buf.data();
      req.length = static_cast<uint32_t>(bytes);
    }
    req.ctx = this;
    req.done = [](Request* r) { static_cast<Cmd*>(r->ctx)->done.store(true); };
  }
  uint8_t* data() { return static_cast<uint8_t*>(buf.data()); }
  uint16_t status() const { return req.cqe.status; }
};

// A connection: a QueuePair living on reactor `reactor`.
class Conn {
 public:
  Conn(Target& target, uint32_t reactor) : reactor_(reactor) {
    EXPECT_TRUE(run_on(reactor_, [&] { qp_ = std::make_unique<QueuePair>(target); }));
  }
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Closes, waits for what is in flight (AERs come back aborted), destroys the queue pair.
  void close() {
    if (!qp_) return;
    EXPECT_TRUE(run_on(reactor_, [&] { qp_->close(); }));
    uint32_t left = 0;
    EXPECT_TRUE(wait_until([&] {
      run_on(reactor_, [&] { left = qp_->in_flight(); });
      return left == 0;
    }));
    EXPECT_TRUE(run_on(reactor_, [&] { qp_.reset(); }));
  }

  void submit(Cmd& c) {
    c.done.store(false);
    EXPECT_TRUE(run_on(reactor_, [&] { qp_->execute(&c.req); }));
  }
  // Submits them all from one message: nothing completes between two submissions.
  void submit_all(const std::vector<std::unique_ptr<Cmd>>& cmds) {
    for (auto& c : cmds) c->done.store(false);
    EXPECT_TRUE(run_on(reactor_, [&] {
      for (auto& c : cmds) qp_->execute(&c->req);
    }));
  }
  bool wait(Cmd& c) { return wait_until([&] { return c.done.load(); }); }
  // Runs the command to completion; returns its status.
  uint16_t exec(Cmd& c) {
    submit(c);
    EXPECT_TRUE(wait(c)) << "command " << int(c.req.sqe.opc) << " never completed";
    return c.status();
  }

  // Connect: qid 0 asks for a new controller; qid > 0 joins `cntlid`.
  uint16_t connect(uint16_t qid, const std::string& subnqn = kSubnqn, const std::string& hostnqn = kHostnqn,
                   uint16_t cntlid = sp::connect::kNewController, uint16_t sqsize = 32, uint32_t kato_ms = 0) {
    Cmd c(sp::kFabricsOpcode, sp::connect::kDataSize, sp::kFctypeConnect);
    c.req.sqe.cdw10 = uint32_t{qid} << 16;
    c.req.sqe.cdw11 = sqsize - 1u;
    c.req.sqe.cdw12 = kato_ms;
    sp::put<uint16_t>(c.data(), sp::connect::kCntlid, cntlid);
    std::memcpy(c.data() + sp::connect::kSubnqn, subnqn.data(), subnqn.size());
    std::memcpy(c.data() + sp::connect::kHostnqn, hostnqn.data(), hostnqn.size());
    const uint16_t st = exec(c);
    last_dw0_ = c.req.cqe.dw0;
    return st;
  }
  uint32_t last_dw0() const { return last_dw0_; }

  Result<uint64_t> property_get(uint32_t offset, bool wide = false) {
    Cmd c(sp::kFabricsOpcode, 0, sp::kFctypePropertyGet);
    c.req.sqe.cdw10 = wide ? sp::kPropertySize8 : 0;
    c.req.sqe.cdw11 = offset;
    if (uint16_t st = exec(c); st != 0) return Status(Errc::io_error, "status " + std::to_string(st));
    return uint64_t{c.req.cqe.dw1} << 32 | c.req.cqe.dw0;
  }
  uint16_t property_set(uint32_t offset, uint32_t value) {
    Cmd c(sp::kFabricsOpcode, 0, sp::kFctypePropertySet);
    c.req.sqe.cdw11 = offset;
    c.req.sqe.cdw12 = value;
    return exec(c);
  }
  // The Linux host's bring-up: Connect, CC.EN = 1, CSTS.RDY.
  void bring_up() {
    ASSERT_EQ(connect(0), 0);
    cntlid_ = static_cast<uint16_t>(last_dw0_);
    ASSERT_EQ(property_set(sp::kRegCc, sp::kCcEnable | sp::cc_iosqes(6) | sp::cc_iocqes(4)), 0);
    auto csts = property_get(sp::kRegCsts);
    ASSERT_TRUE(csts.ok());
    ASSERT_TRUE(*csts & sp::kCstsRdy);
  }
  uint16_t cntlid() const { return cntlid_; }

  QueuePair& qp() { return *qp_; }
  uint32_t reactor() const { return reactor_; }

 private:
  uint32_t reactor_;
  std::unique_ptr<QueuePair> qp_;
  uint32_t last_dw0_ = 0;
  uint16_t cntlid_ = 0;
};

inline thread::AppOptions app_options() {
  thread::AppOptions o;
  o.cores = "0,1";  // pinning failures only warn
  o.shutdown_timeout = 5000ms;
  return o;
}

class NvmfTest : public ::testing::Test {
 protected:
  NvmfTest() : app_(app_options()) {}

  void SetUp() override {
    ASSERT_TRUE(app_.start().ok());
    bdev_ = sluice::testing::unique_name("nvmfmem");
    auto created = bdev::create("malloc:16M", bdev_);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    Status st;
    ASSERT_TRUE(run_on(kHome, [&] {
      TargetOptions o;
      o.home_reactor = kHome;
      o.now_ms = [this] { return now_ms_.load(); };
      o.max_io_bytes = max_io_bytes_;
      target_ = std::make_unique<Target>(o);
      SubsystemOptions s;
      s.nqn = kSubnqn;
      s.serial = "SLTEST01";
      s.model = "Sluice test";
      s.allow_any_host = true;
      st = target_->add_subsystem(s);
      if (!st.ok()) return;
      auto nsid = target_->add_namespace(kSubnqn, {.bdev = bdev_});
      st = nsid.status();
    }));
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  void TearDown() override {
    conns_.clear();
    EXPECT_TRUE(run_on(kHome, [&] { target_.reset(); }));
    if (bdev::find(bdev_)) {
      EXPECT_TRUE(bdev::unregister(bdev_).ok());
    }
    Status st = app_.shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }

  Conn& conn(uint32_t reactor) {
    conns_.push_back(std::make_unique<Conn>(*target_, reactor));
    return *conns_.back();
  }
  // An admin queue on reactor 0 brought up, and an I/O queue on reactor 1 joined to it.
  std::pair<Conn*, Conn*> associate() {
    Conn& admin = conn(0);
    admin.bring_up();
    Conn& io = conn(1);
    EXPECT_EQ(io.connect(1, kSubnqn, kHostnqn, admin.cntlid()), 0);
    return {&admin, &io};
  }
  template <typename F>
  Status on_home(F fn) {
    Status st;
    EXPECT_TRUE(run_on(kHome, [&] { st = fn(*target_); }));
    return st;
  }

  thread::App app_;
  std::string bdev_;
  std::atomic<uint64_t> now_ms_{1000};
  uint32_t max_io_bytes_ = 128 << 10;  // MDTS; a suite may raise it in its constructor
  std::unique_ptr<Target> target_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

}  // namespace sluice::nvmf::testing
