// The virtio-blk test fixture: a connection on a reactor, a fake front end on this thread that
// sets the device up over a socketpair (memfd guest memory, eventfd kick and call) and drives
// requests through a split ring, the bdev a malloc device. Shared by blk_test.cc and
// blk_polling_test.cc.
#pragma once

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "fake_front_end.h"
#include "fake_guest.h"
#include "target/vhost/blk_device.h"
#include "target/vhost/connection.h"
#include "target/vhost/session.h"
#include "target/vhost/virtio_ring.h"
#include "thread/thread.h"
#include "wait.h"

namespace sluice::vhost {

using namespace std::chrono_literals;
using testing::FakeFrontEnd;
using testing::FakeGuest;

inline thread::AppOptions reactors(const char* cores, std::chrono::microseconds idle_grace) {
  thread::AppOptions o;
  o.cores = cores;
  o.shutdown_timeout = 5000ms;
  o.idle_grace = idle_grace;
  return o;
}

class BlkTest : public ::testing::Test {
 protected:
  explicit BlkTest(const char* cores = "0", std::chrono::microseconds idle_grace = thread::AppOptions().idle_grace)
      : app_(reactors(cores, idle_grace)), guest_(4 << 20, 16) {}

  void SetUp() override {
    ASSERT_TRUE(app_.start().ok());
    bdev_ = sluice::testing::unique_name("vhostmem");
    auto created = bdev::create("malloc:4M", bdev_);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    auto d = bdev::open(bdev_);
    ASSERT_TRUE(d.ok());
    desc_ = std::move(d.value());
    open_connection();
    negotiate();
  }

  // A new connection on reactor 0, as if the front end (re)connected.
  void open_connection() {
    int sv[2];
    // Blocking descriptors: the back end reads and writes with MSG_DONTWAIT, the front end's
    // waits are bounded by FakeFrontEnd::recv.
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    front_ = std::make_unique<FakeFrontEnd>(sv[1]);
    gone_ = false;
    int back = sv[0];
    Status st = thread::call_and_wait(0, [this, back]() -> Status {
      auto dev = std::make_unique<BlkDevice>(*desc_, BlkOptions{2, false, "serial-42", coalescing_});
      auto c = start_connection(UniqueFd(back), std::move(dev), "blk-test", [this] { gone_ = true; });
      return c.status();
    }, 5000ms);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  void close_connection() {
    front_.reset();
    ASSERT_TRUE(sluice::testing::wait_until([this] { return gone_.load(); }));
  }

  void TearDown() override {
    close_connection();  // the connection closes and frees itself
    desc_.reset();
    if (bdev::find(bdev_)) {
      EXPECT_TRUE(bdev::unregister(bdev_).ok());
    }
    Status st = app_.shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();  // a leaked channel would fail here
  }

  void ack() { front_->expect_ack(); }

  // What QEMU does at start (FakeFrontEnd::start_queue0), with fresh kick and call eventfds.
  void negotiate(int inflight_fd = -1, InflightWire inflight = {}, uint16_t base = 0) {
    kick_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    call_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    offered_ = front_->start_queue0(guest_, kick_.get(), call_.get(), inflight_fd, inflight, base);
  }

  // A fresh connection asks for an inflight region, as QEMU does before starting the rings,
  // and goes; the region outlives it, as QEMU keeps it.
  UniqueFd fresh_inflight_region(InflightWire* got) {
    close_connection();
    open_connection();
    InflightWire w{0, 0, 1, 16};
    front_->send(Request::get_inflight_fd, &w, sizeof w);
    Message m;
    int fd = -1;
    EXPECT_TRUE(front_->recv(&m, &fd));
    *got = m.as<InflightWire>();
    close_connection();
    return UniqueFd(fd);
  }

  // Queue 1 on its own rings, polled without kicks, beside queue 0.
  void two_queues_side_by_side() {
    // Queue 1 on its own rings, further into guest memory.
    FakeGuest::Rings second = guest_.second_rings(0x200000);
    const uint32_t ack_flag = kVersion | kFlagNeedReply;
    front_->send_state(Request::set_vring_num, 1, 16, ack_flag);
    ack();
    vhost_vring_addr addr{1, 0, second.addrs.desc, second.addrs.used, second.addrs.avail, 0};
    front_->send(Request::set_vring_addr, &addr, sizeof addr, {}, ack_flag);
    ack();
    front_->send_u64(Request::set_vring_kick, 1 | kVringNoFd, {}, ack_flag);  // polled, no kicks
    ack();
    front_->send_state(Request::set_vring_enable, 1, 1, ack_flag);
    ack();
    // A write on queue 1, read back on queue 0.
    const uint64_t data = guest_.alloc(4096), hdr = header(VIRTIO_BLK_T_OUT, 16), st = status_byte();
    std::memset(guest_.at(data), 0x3c, 4096);
    auto* d = reinterpret_cast<vring_desc*>(guest_.at(second.desc_gpa));
    d[0] = {hdr, 16, VRING_DESC_F_NEXT, 1};
    d[1] = {data, 4096, VRING_DESC_F_NEXT, 2};
    d[2] = {st, 1, VRING_DESC_F_WRITE, 0};
    auto* avail = reinterpret_cast<vring_avail*>(guest_.at(second.avail_gpa));
    auto* used = reinterpret_cast<vring_used*>(guest_.at(second.used_gpa));
    avail->ring[0] = 0;
    __atomic_store_n(&avail->idx, uint16_t{1}, __ATOMIC_RELEASE);
    ASSERT_TRUE(sluice::testing::wait_until([&] { return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == 1; }));
    EXPECT_EQ(*guest_.at(st), VIRTIO_BLK_S_OK);
    // Read back on the same queue: across queues the guest orders a write before a read
    // through its rings, in a mapping ThreadSanitizer cannot follow when the queues run on
    // two reactors. Queue 0 meanwhile serves on its own.
    const uint64_t back = guest_.alloc(4096), st2 = status_byte();
    d[3] = {header(VIRTIO_BLK_T_IN, 16), 16, VRING_DESC_F_NEXT, 4};
    d[4] = {back, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5};
    d[5] = {st2, 1, VRING_DESC_F_WRITE, 0};
    avail->ring[1] = 3;
    __atomic_store_n(&avail->idx, uint16_t{2}, __ATOMIC_RELEASE);
    ASSERT_TRUE(sluice::testing::wait_until([&] { return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == 2; }));
    EXPECT_EQ(*guest_.at(st2), VIRTIO_BLK_S_OK);
    const uint64_t other = guest_.alloc(512);
    ASSERT_EQ(run({{header(VIRTIO_BLK_T_IN, 64), 16, false}, {other, 512, true}, {status_byte(), 1, true}}).status,
              VIRTIO_BLK_S_OK);
    EXPECT_EQ(std::memcmp(guest_.at(back), guest_.at(data), 4096), 0);
  }

  struct Done {
    uint8_t status;
    uint32_t used_len;
  };
  // Puts a chain in the ring, kicks, and waits for it in the used ring.
  Done run(const std::vector<FakeGuest::Buf>& bufs) {
    const uint16_t used_before = guest_.used_idx();
    guest_.used_event() = used_before;  // an interrupt for this one
    const uint16_t first = static_cast<uint16_t>((next_desc_ += 4) % 16);
    // Long enough for the reactor to go to sleep (its idle grace is 1 ms): only the kick
    // wakes it, and the guest kicks only when avail_event says the device asked for it,
    // as a Linux guest with EVENT_IDX does.
    std::this_thread::sleep_for(3ms);
    const uint16_t old_avail = guest_.avail()->idx;
    guest_.add_chain(first, bufs);
    const uint16_t avail_event = __atomic_load_n(&guest_.avail_event(), __ATOMIC_ACQUIRE);
    if (vring_need_event(avail_event, guest_.avail()->idx, old_avail)) (void)eventfd_write(kick_.get(), 1);
    const bool used = sluice::testing::wait_until([&] { return guest_.used_idx() != used_before; });
    EXPECT_TRUE(used);
    if (!used) return {0xff, 0};
    const vring_used_elem e = guest_.used()->ring[used_before % 16];
    EXPECT_EQ(e.id, first);
    const FakeGuest::Buf& last = bufs.back();
    return {last.writable ? *guest_.at(last.gpa + last.len - 1) : uint8_t{0xff}, e.len};
  }
  uint64_t header(uint32_t type, uint64_t sector) {
    const uint64_t gpa = guest_.alloc(16);
    virtio_blk_outhdr h{type, 0, sector};
    std::memcpy(guest_.at(gpa), &h, sizeof h);
    return gpa;
  }
  uint64_t status_byte() {
    const uint64_t gpa = guest_.alloc(1);
    *guest_.at(gpa) = 0xee;  // neither OK nor an error: shows whether it was written
    return gpa;
  }
  static uint64_t sectors_total() { return (4u << 20) / 512; }
  bool signalled() {
    pollfd p{call_.get(), POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return false;
    uint64_t v;
    return eventfd_read(call_.get(), &v) == 0 && v > 0;
  }

  thread::App app_;
  FakeGuest guest_;
  std::string bdev_;
  std::unique_ptr<bdev::BdevDesc> desc_;
  std::unique_ptr<FakeFrontEnd> front_;
  std::atomic<bool> gone_{false};
  UniqueFd kick_, call_;
  uint64_t offered_ = 0;
  Coalescing coalescing_;  // for the next open_connection()
  uint16_t next_desc_ = 0;
};

}  // namespace sluice::vhost
