// virtio-scsi through a vhost-scsi controller: a fake front end connects to the controller's
// socket, starts the control, event and request queues on rings in memfd guest memory and
// drives SCSI commands, task management and hot-plug through them; the targets are malloc
// bdevs.
#include <linux/virtio_config.h>
#include <linux/virtio_scsi.h>
#include <sys/eventfd.h>

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "fake_front_end.h"
#include "fake_guest.h"
#include "net/net.h"
#include "target/vhost/vhost.h"
#include "target/vhost/vhost_rpc.h"
#include "target/vhost/virtio_ring.h"
#include "temp_dir.h"
#include "thread/thread.h"
#include "wait.h"

namespace sluice::vhost {
namespace {

using namespace std::chrono_literals;
using rpc::Json;
using testing::FakeFrontEnd;
using testing::FakeGuest;

constexpr uint16_t kRingSize = 16;

// One ring of the device in guest memory (FakeGuest::second_rings), filled as a driver does.
struct Ring {
  FakeGuest* guest = nullptr;
  FakeGuest::Rings at{};
  UniqueFd kick, call;
  uint16_t next_desc = 0;

  vring_desc* desc() { return reinterpret_cast<vring_desc*>(guest->at(at.desc_gpa)); }
  vring_avail* avail() { return reinterpret_cast<vring_avail*>(guest->at(at.avail_gpa)); }
  vring_used* used() { return reinterpret_cast<vring_used*>(guest->at(at.used_gpa)); }
  uint16_t used_idx() { return __atomic_load_n(&used()->idx, __ATOMIC_ACQUIRE); }
  // Makes a chain available and kicks; returns its head.
  uint16_t add(const std::vector<FakeGuest::Buf>& bufs) { return add_all({bufs}); }
  // Makes the chains available at once (one index update, one kick); returns the first head.
  uint16_t add_all(const std::vector<std::vector<FakeGuest::Buf>>& chains) {
    vring_avail* a = avail();
    uint16_t idx = a->idx, head = 0;
    for (const auto& bufs : chains) {
      const uint16_t h = write_chain(bufs);
      if (&bufs == &chains.front()) head = h;
      a->ring[idx++ % kRingSize] = h;
    }
    __atomic_store_n(&a->idx, idx, __ATOMIC_RELEASE);
    (void)eventfd_write(kick.get(), 1);
    return head;
  }
  uint16_t write_chain(const std::vector<FakeGuest::Buf>& bufs) {
    const uint16_t first = next_desc;
    next_desc = static_cast<uint16_t>((next_desc + bufs.size()) % kRingSize);
    for (size_t i = 0; i < bufs.size(); ++i) {
      vring_desc& d = desc()[(first + i) % kRingSize];
      d.addr = bufs[i].gpa;
      d.len = bufs[i].len;
      d.flags = static_cast<uint16_t>((bufs[i].writable ? VRING_DESC_F_WRITE : 0) |
                                      (i + 1 < bufs.size() ? VRING_DESC_F_NEXT : 0));
      d.next = static_cast<uint16_t>((first + i + 1) % kRingSize);
    }
    return first;
  }
  // Waits for `n` more used entries than `before`; the last one's length.
  bool wait_used(uint16_t before, uint16_t n = 1) {
    return sluice::testing::wait_until([&] { return static_cast<uint16_t>(used_idx() - before) >= n; });
  }
  vring_used_elem used_elem(uint16_t idx) { return used()->ring[idx % kRingSize]; }
};

struct Reply {
  uint32_t used_len = 0;
  virtio_scsi_cmd_resp resp{};
  bool ok = false;  // returned to the used ring at all
};

class ScsiTest : public ::testing::Test {
 protected:
  ScsiTest() : app_([] {
      thread::AppOptions o;
      o.cores = "0,1";
      o.shutdown_timeout = 5000ms;
      return o;
    }()), guest_(8 << 20, 16) {}

  void SetUp() override {
    ASSERT_TRUE(app_.start().ok());
    ASSERT_TRUE(set_socket_dir(dir_.path()).ok());
    for (int i = 0; i < 3; ++i) {
      bdevs_.push_back(sluice::testing::unique_name("vscsi"));
      auto made = bdev::create("malloc:4M", bdevs_.back());
      ASSERT_TRUE(made.ok()) << made.status().to_string();
    }
    {
      sluice::testing::BdevHandle h(bdevs_[0]);
      bs_ = h.bs();
    }
    ASSERT_TRUE(create_scsi_controller({"scsi.0", 2}).ok());
    auto slot = scsi_controller_add_target("scsi.0", 0, bdevs_[0]);
    ASSERT_TRUE(slot.ok()) << slot.status().to_string();
    ASSERT_EQ(*slot, 0u);
    auto fd = net::connect_stream(net::ListenAddress::unix_socket(dir_.file("scsi.0")), 5000);
    ASSERT_TRUE(fd.ok()) << fd.status().to_string();
    front_ = std::make_unique<FakeFrontEnd>(*fd);
    offered_ = front_->negotiate(guest_);
    for (uint32_t i = 0; i < 4; ++i) start(i);
  }
  void TearDown() override {
    front_.reset();
    if (!deleted_) {
      EXPECT_TRUE(delete_controller("scsi.0").ok());
    }
    for (const std::string& b : bdevs_)
      if (bdev::find(b)) {
        EXPECT_TRUE(bdev::unregister(b).ok());
      }
    Status st = app_.shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();
  }

  // Queue i (0 control, 1 event, 2 and 3 requests) on its own rings.
  void start(uint32_t i) {
    Ring& r = rings_[i];
    r.guest = &guest_;
    r.at = guest_.second_rings(0x400000 + 0x4000 * i);
    r.kick = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    r.call = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    front_->start_queue(i, kRingSize, r.at.addrs, r.kick.get(), r.call.get());
  }

  static std::array<uint8_t, 8> lun_field(uint8_t target, uint16_t lun) {
    std::array<uint8_t, 8> f{1, target, 0, 0, 0, 0, 0, 0};
    if (lun < 256) {
      f[3] = static_cast<uint8_t>(lun);
    } else {
      f[2] = static_cast<uint8_t>(0x40 | (lun >> 8));
      f[3] = static_cast<uint8_t>(lun);
    }
    return f;
  }
  uint64_t request(std::vector<uint8_t> cdb, uint8_t target = 0, uint16_t lun = 0) {
    const uint64_t gpa = guest_.alloc(sizeof(virtio_scsi_cmd_req));
    virtio_scsi_cmd_req req{};
    const auto f = lun_field(target, lun);
    std::memcpy(req.lun, f.data(), 8);
    std::memcpy(req.cdb, cdb.data(), std::min(cdb.size(), sizeof req.cdb));
    std::memcpy(guest_.at(gpa), &req, sizeof req);
    return gpa;
  }
  uint64_t response() {
    const uint64_t gpa = guest_.alloc(sizeof(virtio_scsi_cmd_resp));
    std::memset(guest_.at(gpa), 0xee, sizeof(virtio_scsi_cmd_resp));
    return gpa;
  }
  // Runs one chain on request queue `q` and reads back the response (at `resp`).
  Reply run(const std::vector<FakeGuest::Buf>& bufs, uint64_t resp, uint32_t q = 2) {
    Ring& r = rings_[q];
    const uint16_t before = r.used_idx();
    const uint16_t head = r.add(bufs);
    Reply out;
    if (!r.wait_used(before)) return out;
    const vring_used_elem e = r.used_elem(before);
    EXPECT_EQ(e.id, head);
    out.ok = true;
    out.used_len = e.len;
    std::memcpy(&out.resp, guest_.at(resp), sizeof out.resp);
    return out;
  }
  // A command with data-in (`in_len` bytes at `in`, 0: none) or data-out (`out_len` at `out`).
  Reply command(std::vector<uint8_t> cdb, uint8_t target = 0, uint16_t lun = 0, uint64_t in = 0, uint32_t in_len = 0,
                uint64_t out = 0, uint32_t out_len = 0, uint32_t q = 2) {
    const uint64_t resp = response();
    std::vector<FakeGuest::Buf> bufs{{request(std::move(cdb), target, lun), sizeof(virtio_scsi_cmd_req), false}};
    if (out_len != 0) bufs.push_back({out, out_len, false});
    bufs.push_back({resp, sizeof(virtio_scsi_cmd_resp), true});
    if (in_len != 0) bufs.push_back({in, in_len, true});
    return run(bufs, resp, q);
  }
  // Control queue: a TMF, returning its response byte (0xff if none came).
  uint8_t tmf(uint32_t subtype, uint8_t target, uint16_t lun = 0) {
    const uint64_t req = guest_.alloc(sizeof(virtio_scsi_ctrl_tmf_req)), resp = guest_.alloc(1);
    virtio_scsi_ctrl_tmf_req t{};
    t.type = VIRTIO_SCSI_T_TMF;
    t.subtype = subtype;
    const auto f = lun_field(target, lun);
    std::memcpy(t.lun, f.data(), 8);
    std::memcpy(guest_.at(req), &t, sizeof t);
    *guest_.at(resp) = 0xee;
    Ring& r = rings_[0];
    const uint16_t before = r.used_idx();
    r.add({{req, sizeof t, false}, {resp, 1, true}});
    if (!r.wait_used(before)) return 0xff;
    EXPECT_EQ(r.used_elem(before).len, 1u);
    return *guest_.at(resp);
  }
  // Posts an event buffer on the event queue; returns its address.
  uint64_t post_event_buffer() {
    const uint64_t gpa = guest_.alloc(sizeof(virtio_scsi_event));
    std::memset(guest_.at(gpa), 0xee, sizeof(virtio_scsi_event));
    rings_[1].add({{gpa, sizeof(virtio_scsi_event), true}});
    return gpa;
  }
  virtio_scsi_event event_at(uint64_t gpa) {
    virtio_scsi_event e;
    std::memcpy(&e, guest_.at(gpa), sizeof e);
    return e;
  }
  uint32_t block_size() const { return bs_; }

  thread::App app_;
  FakeGuest guest_;
  sluice::testing::TempDir dir_;
  std::vector<std::string> bdevs_;
  std::unique_ptr<FakeFrontEnd> front_;
  uint64_t offered_ = 0;
  uint32_t bs_ = 512;
  bool deleted_ = false;
  Ring rings_[4];
};

constexpr uint8_t kInquiry = 0x12, kTestUnitReady = 0x00, kRead10 = 0x28, kWrite10 = 0x2a, kReportLuns = 0xa0;

std::vector<uint8_t> rw10(uint8_t op, uint32_t lba, uint16_t blocks) {
  return {op, 0, static_cast<uint8_t>(lba >> 24), static_cast<uint8_t>(lba >> 16), static_cast<uint8_t>(lba >> 8),
          static_cast<uint8_t>(lba), 0, static_cast<uint8_t>(blocks >> 8), static_cast<uint8_t>(blocks), 0};
}

TEST_F(ScsiTest, OffersVirtioScsiFeaturesConfigAndQueues) {
  EXPECT_NE(offered_ & (1ull << VIRTIO_F_VERSION_1), 0u);
  EXPECT_NE(offered_ & (1ull << VIRTIO_SCSI_F_HOTPLUG), 0u);
  EXPECT_NE(offered_ & (1ull << VIRTIO_RING_F_EVENT_IDX), 0u);
  ConfigWire c{};
  c.size = sizeof(virtio_scsi_config);
  front_->send(Request::get_config, &c, kConfigHeaderSize + c.size);
  Message m;
  ASSERT_TRUE(front_->recv(&m));
  virtio_scsi_config cfg;
  std::memcpy(&cfg, m.payload + kConfigHeaderSize, sizeof cfg);
  EXPECT_EQ(cfg.num_queues, 2u);
  EXPECT_EQ(cfg.sense_size, 96u);
  EXPECT_EQ(cfg.cdb_size, 32u);
  EXPECT_EQ(cfg.max_channel, 0u);
  EXPECT_EQ(cfg.max_target, 7u);
  EXPECT_EQ(cfg.event_info_size, sizeof(virtio_scsi_event));
  EXPECT_EQ(front_->get_u64(Request::get_queue_num), 4u);  // control, event, two request queues
}

TEST_F(ScsiTest, InquiryReadCapacityAndReportLuns) {
  const uint64_t buf = guest_.alloc(4096);
  Reply r = command({kInquiry, 0, 0, 0, 96, 0}, 0, 0, buf, 96);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_OK);
  EXPECT_EQ(r.resp.status, 0);
  EXPECT_EQ(guest_.at(buf)[0], 0x00);  // a direct-access block device, connected
  EXPECT_EQ(std::string(reinterpret_cast<char*>(guest_.at(buf)) + 8, 6), "SLUICE");
  EXPECT_EQ(r.used_len, sizeof(virtio_scsi_cmd_resp) + 96 - r.resp.resid);
  // READ CAPACITY(16)
  r = command({0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 0, 0, buf, 32);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.status, 0);
  uint64_t last = 0;
  for (int i = 0; i < 8; ++i) last = last << 8 | guest_.at(buf)[i];
  const uint32_t bs = uint32_t{guest_.at(buf)[8]} << 24 | uint32_t{guest_.at(buf)[9]} << 16 |
                      uint32_t{guest_.at(buf)[10]} << 8 | guest_.at(buf)[11];
  EXPECT_EQ(bs, block_size());
  EXPECT_EQ(last + 1, (4u << 20) / bs);
  // REPORT LUNS: LUN 0 only.
  r = command({kReportLuns, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 0, 0, buf, 64);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.status, 0);
  EXPECT_EQ(guest_.at(buf)[3], 8);  // one 8-byte entry
  for (int i = 8; i < 16; ++i) EXPECT_EQ(guest_.at(buf)[i], 0);
  EXPECT_EQ(r.used_len, sizeof(virtio_scsi_cmd_resp) + 16);
}

TEST_F(ScsiTest, WritesAndReadsBackThroughTheGuestsBuffers) {
  const uint32_t bs = block_size();
  const uint64_t a = guest_.alloc(8192), b = guest_.alloc(8192);
  for (uint32_t i = 0; i < 8192; ++i) guest_.at(a)[i] = static_cast<uint8_t>(i * 7 + 3);
  const uint16_t blocks = static_cast<uint16_t>(8192 / bs);
  Reply w = command(rw10(kWrite10, 4, blocks), 0, 0, 0, 0, a, 8192);
  ASSERT_TRUE(w.ok);
  EXPECT_EQ(w.resp.response, VIRTIO_SCSI_S_OK);
  EXPECT_EQ(w.resp.status, 0);
  EXPECT_EQ(w.resp.resid, 0u);
  EXPECT_EQ(w.used_len, sizeof(virtio_scsi_cmd_resp));
  // On the device (a message orders the reactor's writes before our read, see blk_test).
  ASSERT_TRUE(thread::call_and_wait(0, [] { return Status::Ok(); }, 5000ms).ok());
  ASSERT_TRUE(thread::call_and_wait(1, [] { return Status::Ok(); }, 5000ms).ok());
  sluice::testing::BdevHandle h(bdevs_[0]);
  std::vector<uint8_t> disk(8192);
  ASSERT_TRUE(h.io().read(disk.data(), 4, blocks).ok());
  EXPECT_EQ(std::memcmp(disk.data(), guest_.at(a), 8192), 0);
  // Read back into two buffers, on the other request queue.
  const uint64_t resp = response();
  Reply r = run({{request(rw10(kRead10, 4, blocks)), sizeof(virtio_scsi_cmd_req), false},
                 {resp, sizeof(virtio_scsi_cmd_resp), true},
                 {b, 4096, true},
                 {b + 4096, 4096, true}},
                resp, 3);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.status, 0);
  EXPECT_EQ(r.used_len, sizeof(virtio_scsi_cmd_resp) + 8192);
  EXPECT_EQ(std::memcmp(guest_.at(b), guest_.at(a), 8192), 0);
  // A read past the end: CHECK CONDITION with sense, the response still OK.
  r = command(rw10(kRead10, (4u << 20) / bs, 1), 0, 0, b, bs);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_OK);
  EXPECT_EQ(r.resp.status, 0x02);
  EXPECT_GT(r.resp.sense_len, 0u);
  EXPECT_EQ(r.resp.sense[2] & 0x0f, 0x05);  // ILLEGAL REQUEST
}

TEST_F(ScsiTest, AnEmptySlotIsABadTargetAndAMissingLunIsNotSupported) {
  Reply r = command({kTestUnitReady, 0, 0, 0, 0, 0}, 3);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_BAD_TARGET);
  EXPECT_EQ(r.used_len, sizeof(virtio_scsi_cmd_resp));
  r = command({kTestUnitReady, 0, 0, 0, 0, 0}, 9);  // beyond max_target
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_BAD_TARGET);
  // LUN 1 of target 0: as a target with only LUN 0 answers.
  r = command({kTestUnitReady, 0, 0, 0, 0, 0}, 0, 1);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_OK);
  EXPECT_EQ(r.resp.status, 0x02);
  EXPECT_EQ(r.resp.sense[2] & 0x0f, 0x05);  // ILLEGAL REQUEST
  EXPECT_EQ(r.resp.sense[12], 0x25);        // LOGICAL UNIT NOT SUPPORTED
  const uint64_t buf = guest_.alloc(96);
  r = command({kInquiry, 0, 0, 0, 96, 0}, 0, 300, buf, 96);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.status, 0);
  EXPECT_EQ(guest_.at(buf)[0], 0x7f);  // peripheral qualifier 3: no LUN here
  r = command({kReportLuns, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 0, 5, buf, 64);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.status, 0);
  EXPECT_EQ(guest_.at(buf)[3], 8);
}

TEST_F(ScsiTest, TaskManagementAndNotificationQueries) {
  EXPECT_EQ(tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0), VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
  EXPECT_EQ(tmf(VIRTIO_SCSI_T_TMF_ABORT_TASK, 0), VIRTIO_SCSI_S_OK);  // FUNCTION COMPLETE
  EXPECT_EQ(tmf(VIRTIO_SCSI_T_TMF_ABORT_TASK_SET, 0), VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
  EXPECT_EQ(tmf(VIRTIO_SCSI_T_TMF_CLEAR_ACA, 0), VIRTIO_SCSI_S_FUNCTION_REJECTED);
  EXPECT_EQ(tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 4), VIRTIO_SCSI_S_BAD_TARGET);
  EXPECT_EQ(tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 7), VIRTIO_SCSI_S_INCORRECT_LUN);
  // The LUN still serves.
  EXPECT_EQ(command({kTestUnitReady, 0, 0, 0, 0, 0}).resp.status, 0);
  // AN_QUERY: nothing is offered.
  const uint64_t req = guest_.alloc(sizeof(virtio_scsi_ctrl_an_req)), resp = guest_.alloc(sizeof(virtio_scsi_ctrl_an_resp));
  virtio_scsi_ctrl_an_req an{};
  an.type = VIRTIO_SCSI_T_AN_QUERY;
  an.lun[0] = 1;
  an.event_requested = 1u << 4;
  std::memcpy(guest_.at(req), &an, sizeof an);
  std::memset(guest_.at(resp), 0xee, sizeof(virtio_scsi_ctrl_an_resp));
  Ring& r = rings_[0];
  const uint16_t before = r.used_idx();
  r.add({{req, sizeof an, false}, {resp, sizeof(virtio_scsi_ctrl_an_resp), true}});
  ASSERT_TRUE(r.wait_used(before));
  EXPECT_EQ(r.used_elem(before).len, sizeof(virtio_scsi_ctrl_an_resp));
  virtio_scsi_ctrl_an_resp got;
  std::memcpy(&got, guest_.at(resp), sizeof got);
  EXPECT_EQ(got.event_actual, 0u);
  EXPECT_EQ(got.response, VIRTIO_SCSI_S_OK);
}

TEST_F(ScsiTest, HotPlugIsReportedOnTheEventQueue) {
  const uint64_t e1 = post_event_buffer(), e2 = post_event_buffer();
  auto slot = scsi_controller_add_target("scsi.0", -1, bdevs_[1]);
  ASSERT_TRUE(slot.ok());
  EXPECT_EQ(*slot, 1u);
  ASSERT_TRUE(rings_[1].wait_used(0));
  virtio_scsi_event ev = event_at(e1);
  EXPECT_EQ(ev.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
  EXPECT_EQ(ev.reason, VIRTIO_SCSI_EVT_RESET_RESCAN);
  EXPECT_EQ(ev.lun[0], 1);
  EXPECT_EQ(ev.lun[1], 1);
  EXPECT_EQ(rings_[1].used_elem(0).len, sizeof(virtio_scsi_event));
  // The new target answers.
  const uint64_t buf = guest_.alloc(96);
  Reply r = command({kInquiry, 0, 0, 0, 96, 0}, 1, 0, buf, 96);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_OK);
  EXPECT_EQ(r.resp.status, 0);
  // Removed: an event, then BAD_TARGET.
  ASSERT_TRUE(scsi_controller_remove_target("scsi.0", 1).ok());
  ASSERT_TRUE(rings_[1].wait_used(0, 2));
  ev = event_at(e2);
  EXPECT_EQ(ev.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
  EXPECT_EQ(ev.reason, VIRTIO_SCSI_EVT_RESET_REMOVED);
  EXPECT_EQ(ev.lun[1], 1);
  EXPECT_EQ(command({kInquiry, 0, 0, 0, 96, 0}, 1, 0, buf, 96).resp.response, VIRTIO_SCSI_S_BAD_TARGET);
  EXPECT_EQ(command({kTestUnitReady, 0, 0, 0, 0, 0}, 1, 0, 0, 0, 0, 0, 3).resp.response, VIRTIO_SCSI_S_BAD_TARGET);
  // With no buffer posted, the next event says some were missed.
  ASSERT_TRUE(scsi_controller_add_target("scsi.0", 5, bdevs_[2]).ok());
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(rings_[1].used_idx(), 2);
  const uint64_t e3 = post_event_buffer();
  ASSERT_TRUE(rings_[1].wait_used(0, 3));
  ev = event_at(e3);
  EXPECT_NE(ev.event & VIRTIO_SCSI_T_EVENTS_MISSED, 0u);
  EXPECT_EQ(command({kTestUnitReady, 0, 0, 0, 0, 0}, 5).resp.status, 0);
}

TEST_F(ScsiTest, RemovingATargetWaitsForItsTasksInFlight) {
  // 20 requests a second: four reads stay in flight for a while.
  ASSERT_TRUE(bdev::set_qos_limits(bdevs_[0], {.rw_ios_per_sec = 20}).ok());
  const uint32_t bs = block_size();
  const uint64_t buf = guest_.alloc(4 * 4096);
  std::vector<uint64_t> resps;
  Ring& r = rings_[2];
  const uint16_t before = r.used_idx();
  std::vector<std::vector<FakeGuest::Buf>> reads;
  for (int i = 0; i < 4; ++i) {
    resps.push_back(response());
    reads.push_back({{request(rw10(kRead10, 0, static_cast<uint16_t>(4096 / bs))), sizeof(virtio_scsi_cmd_req), false},
                     {resps.back(), sizeof(virtio_scsi_cmd_resp), true},
                     {buf + 4096u * i, 4096, true}});
  }
  r.add_all(reads);
  // The queue took all four at once: once the first is back, the rest are in flight.
  ASSERT_TRUE(r.wait_used(before));
  EXPECT_LT(static_cast<uint16_t>(r.used_idx() - before), 4);
  ASSERT_TRUE(scsi_controller_remove_target("scsi.0", 0).ok());
  // Every one of them was answered before the target went.
  EXPECT_EQ(static_cast<uint16_t>(r.used_idx() - before), 4);
  for (uint64_t resp : resps) {
    virtio_scsi_cmd_resp got;
    std::memcpy(&got, guest_.at(resp), sizeof got);
    EXPECT_EQ(got.response, VIRTIO_SCSI_S_OK);
    EXPECT_EQ(got.status, 0);
  }
  EXPECT_EQ(command({kTestUnitReady, 0, 0, 0, 0, 0}).resp.response, VIRTIO_SCSI_S_BAD_TARGET);
  // The slot takes a target again.
  ASSERT_TRUE(scsi_controller_add_target("scsi.0", 0, bdevs_[1]).ok());
  EXPECT_EQ(command({kTestUnitReady, 0, 0, 0, 0, 0}).resp.status, 0);
}

TEST_F(ScsiTest, ALunResetIsAnsweredOnceTheTasksInFlightFinished) {
  ASSERT_TRUE(bdev::set_qos_limits(bdevs_[0], {.rw_ios_per_sec = 20}).ok());
  const uint64_t buf = guest_.alloc(3 * 4096);
  Ring& io = rings_[3];
  const uint16_t before = io.used_idx();
  std::vector<std::vector<FakeGuest::Buf>> reads;
  for (int i = 0; i < 3; ++i)
    reads.push_back({{request(rw10(kRead10, 0, static_cast<uint16_t>(4096 / bs_))), sizeof(virtio_scsi_cmd_req), false},
                     {response(), sizeof(virtio_scsi_cmd_resp), true},
                     {buf + 4096u * i, 4096, true}});
  io.add_all(reads);
  // The queue took all three at once: once the first is back, the rest are in flight.
  ASSERT_TRUE(io.wait_used(before));
  EXPECT_LT(static_cast<uint16_t>(io.used_idx() - before), 3);
  EXPECT_EQ(tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0), VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
  EXPECT_EQ(static_cast<uint16_t>(io.used_idx() - before), 3);  // all of them before the answer
}

TEST_F(ScsiTest, MalformedRequestsFailAloneAndTheQueueGoesOn) {
  const uint64_t buf = guest_.alloc(4096);
  // A header shorter than virtio_scsi_cmd_req: FAILURE in the response.
  uint64_t resp = response();
  Reply r = run({{request({kTestUnitReady}), 20, false}, {resp, sizeof(virtio_scsi_cmd_resp), true}}, resp);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_FAILURE);
  EXPECT_EQ(r.used_len, sizeof(virtio_scsi_cmd_resp));
  // No room for the response: nothing written.
  resp = response();
  r = run({{request({kTestUnitReady}), sizeof(virtio_scsi_cmd_req), false}, {resp, 50, true}}, resp);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.used_len, 0u);
  EXPECT_EQ(guest_.at(resp)[0], 0xee);
  // The response buffer device-readable: nothing written.
  resp = response();
  r = run({{request({kTestUnitReady}), sizeof(virtio_scsi_cmd_req), false}, {resp, sizeof(virtio_scsi_cmd_resp), false}}, resp);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.used_len, 0u);
  EXPECT_EQ(guest_.at(resp)[0], 0xee);
  // A variable-length CDB longer than cdb_size.
  std::vector<uint8_t> var(32, 0);
  var[0] = 0x7f;
  var[7] = 40;
  EXPECT_EQ(command(var).resp.response, VIRTIO_SCSI_S_FAILURE);
  // Data both ways (no VIRTIO_SCSI_F_INOUT).
  resp = response();
  r = run({{request(rw10(kWrite10, 0, 1)), sizeof(virtio_scsi_cmd_req), false},
           {buf, 512, false},
           {resp, sizeof(virtio_scsi_cmd_resp), true},
           {buf + 512, 512, true}},
          resp);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_FAILURE);
  // A descriptor outside guest memory: returned with nothing written.
  resp = response();
  r = run({{0xdead00000000ull, sizeof(virtio_scsi_cmd_req), false}, {resp, sizeof(virtio_scsi_cmd_resp), true}}, resp);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.used_len, 0u);
  // A malformed TMF (too short) is returned with nothing written.
  const uint64_t tmf_req = guest_.alloc(8), tmf_resp = guest_.alloc(1);
  const uint32_t type = VIRTIO_SCSI_T_TMF;
  std::memcpy(guest_.at(tmf_req), &type, 4);
  const uint16_t before = rings_[0].used_idx();
  rings_[0].add({{tmf_req, 8, false}, {tmf_resp, 1, true}});
  ASSERT_TRUE(rings_[0].wait_used(before));
  EXPECT_EQ(rings_[0].used_elem(before).len, 0u);
  // And the queue still serves.
  r = command({kInquiry, 0, 0, 0, 96, 0}, 0, 0, buf, 96);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_OK);
  EXPECT_EQ(r.resp.status, 0);
}

TEST_F(ScsiTest, DeletingTheControllerDisconnectsTheGuestAndClosesItsTargets) {
  ASSERT_TRUE(scsi_controller_add_target("scsi.0", 7, bdevs_[1]).ok());
  // Each reactor reads into buffers of its own: the guest orders the two through its rings,
  // in a mapping ThreadSanitizer cannot follow.
  const uint64_t a = guest_.alloc(4096), b = guest_.alloc(4096);
  ASSERT_EQ(command(rw10(kRead10, 0, 1), 7, 0, a, bs_, 0, 0, 3).resp.status, 0);
  ASSERT_EQ(command(rw10(kRead10, 0, 1), 0, 0, b, bs_).resp.status, 0);
  ASSERT_TRUE(delete_controller("scsi.0").ok());
  deleted_ = true;
  EXPECT_TRUE(front_->closed_by_peer());
  // Nothing holds the bdevs any more.
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(bdev::unregister(bdevs_[i]).ok());
}

TEST_F(ScsiTest, ABufferTheBdevCannotTakeGoesThroughABounceBuffer) {
  // A file bdev (direct I/O) takes buffers aligned to 512 bytes at least.
  const std::string file = dir_.file("disk.img");
  std::ofstream(file).close();
  ASSERT_EQ(truncate(file.c_str(), 1 << 20), 0);
  const std::string name = sluice::testing::unique_name("vscsifile");
  auto made = bdev::create("uring:" + file, name);
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  bdevs_.push_back(name);
  sluice::testing::BdevHandle h(name);
  if (h.desc->geometry().buf_align <= 1) GTEST_SKIP() << "the file bdev takes any buffer here";
  ASSERT_TRUE(scsi_controller_add_target("scsi.0", 2, name).ok());
  const uint32_t bs = h.bs();
  const uint64_t out = guest_.alloc(2 * bs), in = guest_.alloc(2 * bs);
  for (uint32_t i = 0; i < bs; ++i) guest_.at(out)[i + 1] = static_cast<uint8_t>(i * 13 + 5);
  EXPECT_EQ(command(rw10(kWrite10, 3, 1), 2, 0, 0, 0, out + 1, bs).resp.status, 0);
  Reply r = command(rw10(kRead10, 3, 1), 2, 0, in + 7, bs);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_OK);
  EXPECT_EQ(r.resp.status, 0);
  EXPECT_EQ(std::memcmp(guest_.at(in) + 7, guest_.at(out) + 1, bs), 0);
  EXPECT_EQ(h.desc->bdev().stats().bounced.get(), 2u);
}

TEST_F(ScsiTest, AHotRemovedBdevTakesItsTargetAwayAndNothingElse) {
  const uint64_t ev_buf = post_event_buffer();
  const uint64_t buf = guest_.alloc(4096);
  ASSERT_EQ(command(rw10(kRead10, 0, 1), 0, 0, buf, bs_).resp.status, 0);
  ASSERT_TRUE(bdev::unregister(bdevs_[0]).ok());
  // The guest hears that target 0 went, as after vhost_scsi_controller_remove_target...
  ASSERT_TRUE(rings_[1].wait_used(0));
  const virtio_scsi_event ev = event_at(ev_buf);
  EXPECT_EQ(ev.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
  EXPECT_EQ(ev.reason, VIRTIO_SCSI_EVT_RESET_REMOVED);
  EXPECT_EQ(ev.lun[1], 0);
  // ...and the slot answers BAD_TARGET rather than failing every command.
  Reply r = command(rw10(kRead10, 0, 1), 0, 0, buf, bs_);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.resp.response, VIRTIO_SCSI_S_BAD_TARGET);
  EXPECT_EQ(scsi_controller_remove_target("scsi.0", 0).code(), Errc::not_found);
  // The connection and the controller carry on; the slot takes a new target.
  EXPECT_EQ(front_->get_u64(Request::get_queue_num), 4u);
  ASSERT_TRUE(scsi_controller_add_target("scsi.0", 0, bdevs_[1]).ok());
  EXPECT_EQ(command(rw10(kRead10, 0, 1), 0, 0, buf, bs_).resp.status, 0);
}

}  // namespace
}  // namespace sluice::vhost
