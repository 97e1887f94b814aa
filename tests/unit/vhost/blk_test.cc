// virtio-blk through a real vhost-user connection on a reactor: a fake front end on this
// thread sets the device up over a socketpair (memfd guest memory, eventfd kick and call)
// and drives requests through a split ring, the bdev a malloc device.
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
namespace {

using namespace std::chrono_literals;
using testing::FakeFrontEnd;
using testing::FakeGuest;

thread::AppOptions reactors(const char* cores) {
  thread::AppOptions o;
  o.cores = cores;
  o.shutdown_timeout = 5000ms;
  return o;
}

class BlkTest : public ::testing::Test {
 protected:
  explicit BlkTest(const char* cores = "0") : app_(reactors(cores)), guest_(4 << 20, 16) {}

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

TEST_F(BlkTest, OffersTheDevicesFeaturesAndConfig) {
  EXPECT_NE(offered_ & (1ull << VIRTIO_F_VERSION_1), 0u);
  EXPECT_NE(offered_ & (1ull << VIRTIO_BLK_F_FLUSH), 0u);
  EXPECT_NE(offered_ & (1ull << VIRTIO_RING_F_EVENT_IDX), 0u);
  EXPECT_EQ(offered_ & (1ull << VIRTIO_BLK_F_RO), 0u);
  ConfigWire c{};
  c.size = sizeof(virtio_blk_config);
  front_->send(Request::get_config, &c, kConfigHeaderSize + c.size);
  Message m;
  ASSERT_TRUE(front_->recv(&m));
  virtio_blk_config cfg;
  std::memcpy(&cfg, m.payload + kConfigHeaderSize, sizeof cfg);
  EXPECT_EQ(cfg.capacity, (4u << 20) / 512);
  EXPECT_EQ(cfg.blk_size, desc_->geometry().block_size);
  EXPECT_EQ(cfg.seg_max, BlkDevice::kSegMax);
  EXPECT_EQ(cfg.num_queues, 2);
}

TEST_F(BlkTest, WritesAndReadsBackThroughTheGuestsBuffers) {
  const uint64_t a = guest_.alloc(4096), b = guest_.alloc(4096);
  for (uint32_t i = 0; i < 4096; ++i) guest_.at(a)[i] = static_cast<uint8_t>(i * 7), guest_.at(b)[i] = static_cast<uint8_t>(i * 13 + 1);
  Done w = run({{header(VIRTIO_BLK_T_OUT, 8), 16, false}, {a, 4096, false}, {b, 4096, false}, {status_byte(), 1, true}});
  EXPECT_EQ(w.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(w.used_len, 1u);  // only the status byte was written
  EXPECT_TRUE(signalled());
  // The bytes are on the device at sector 8. (The reactor wrote them; the used ring told us
  // so through another mapping of the memory, which ThreadSanitizer cannot follow: a message
  // to the reactor orders its writes before our read in a way it sees.)
  ASSERT_TRUE(thread::call_and_wait(0, [] { return Status::Ok(); }, 5000ms).ok());
  sluice::testing::BdevHandle h(bdev_);
  std::vector<uint8_t> disk(8192);
  ASSERT_TRUE(h.io().read(disk.data(), 4096 / h.bs(), 8192 / h.bs()).ok());
  EXPECT_EQ(std::memcmp(disk.data(), guest_.at(a), 4096), 0);
  EXPECT_EQ(std::memcmp(disk.data() + 4096, guest_.at(b), 4096), 0);
  // Read back into other buffers, split differently.
  const uint64_t c = guest_.alloc(8192);
  Done r = run({{header(VIRTIO_BLK_T_IN, 8), 16, false}, {c, 512, true}, {c + 512, 7680, true}, {status_byte(), 1, true}});
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r.used_len, 8193u);
  // The reactor slept between requests and the guest's kicks woke it.
  auto stats = thread::reactor_stats(0);
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->sleeps, 0u);
  EXPECT_EQ(std::memcmp(guest_.at(c), disk.data(), 8192), 0);
}

TEST_F(BlkTest, FlushGetIdAndWriteZeroes) {
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_FLUSH, 0), 16, false}, {status_byte(), 1, true}}).status, VIRTIO_BLK_S_OK);
  const uint64_t id = guest_.alloc(20);
  std::memset(guest_.at(id), 'x', 20);
  Done got = run({{header(VIRTIO_BLK_T_GET_ID, 0), 16, false}, {id, 20, true}, {status_byte(), 1, true}});
  EXPECT_EQ(got.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(got.used_len, 21u);
  EXPECT_STREQ(reinterpret_cast<char*>(guest_.at(id)), "serial-42");
  // Data, then zeroes over part of it.
  const uint64_t a = guest_.alloc(4096);
  std::memset(guest_.at(a), 0x5a, 4096);
  ASSERT_EQ(run({{header(VIRTIO_BLK_T_OUT, 0), 16, false}, {a, 4096, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_OK);
  // A malloc device has 512-byte blocks and zeroes them.
  ASSERT_NE(offered_ & (1ull << VIRTIO_BLK_F_WRITE_ZEROES), 0u);
  ASSERT_EQ(desc_->geometry().block_size, 512u);
  const uint64_t range = guest_.alloc(16);
  virtio_blk_discard_write_zeroes z{2, 4, 0};  // sectors 2-5
  std::memcpy(guest_.at(range), &z, sizeof z);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_WRITE_ZEROES, 0), 16, false}, {range, 16, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_OK);
  const uint64_t back = guest_.alloc(4096);
  ASSERT_EQ(run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {back, 4096, true}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_OK);
  const uint8_t* p = guest_.at(back);
  EXPECT_EQ(p[1023], 0x5a);
  EXPECT_EQ(p[1024], 0);
  EXPECT_EQ(p[3071], 0);
  EXPECT_EQ(p[3072], 0x5a);
  // A range past the end, and flags DISCARD does not take.
  z = {sectors_total() - 2, 4, 0};
  std::memcpy(guest_.at(range), &z, sizeof z);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_WRITE_ZEROES, 0), 16, false}, {range, 16, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_IOERR);
  ASSERT_NE(offered_ & (1ull << VIRTIO_BLK_F_DISCARD), 0u);
  z = {0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP};
  std::memcpy(guest_.at(range), &z, sizeof z);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_DISCARD, 0), 16, false}, {range, 16, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_UNSUPP);
  z = {0, 8, 0};
  std::memcpy(guest_.at(range), &z, sizeof z);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_DISCARD, 0), 16, false}, {range, 16, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_OK);
}

TEST_F(BlkTest, BadRequestsFailAloneAndTheQueueGoesOn) {
  const uint64_t buf = guest_.alloc(4096);
  const uint64_t sectors = (4u << 20) / 512;
  // Beyond the end, half a block, a huge sector that would overflow, an unknown type, an IN
  // whose data the device would have to read.
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_IN, sectors - 1), 16, false}, {buf, 1024, true}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 100, true}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_OUT, UINT64_MAX / 256), 16, false}, {buf, 512, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(run({{header(77, 0), 16, false}, {status_byte(), 1, true}}).status, VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_IOERR);
  // A buffer outside guest memory: the chain is refused and nothing is written.
  const uint64_t st = status_byte();
  Done bad = run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {testing::kGuestBase + (4 << 20), 512, true}, {st, 1, true}});
  EXPECT_EQ(bad.used_len, 0u);
  EXPECT_EQ(*guest_.at(st), 0xee);
  // The queue still serves.
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, true}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_OK);
}

TEST_F(BlkTest, GetVringBaseStopsAfterTheLastRequest) {
  const uint64_t buf = guest_.alloc(512);
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, true}, {status_byte(), 1, true}}).status,
              VIRTIO_BLK_S_OK);
  front_->send_state(Request::get_vring_base, 0, 0);
  Message m;
  ASSERT_TRUE(front_->recv(&m));
  EXPECT_EQ(m.as<vhost_vring_state>().num, 3u);
  // A stopped ring takes nothing more.
  const uint16_t used = guest_.used_idx();
  guest_.add_chain(0, {{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, true}, {status_byte(), 1, true}});
  (void)eventfd_write(kick_.get(), 1);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(guest_.used_idx(), used);
}

TEST_F(BlkTest, ARequestReturnedJustBeforeACrashIsNotServedAgain) {
  InflightWire got;
  UniqueFd region = fresh_inflight_region(&got);
  ASSERT_TRUE(region.valid());
  // The dead back end had put A in the used ring and died before clearing its mark.
  const uint64_t st = status_byte();
  const uint16_t used = guest_.used_idx();
  guest_.add_chain(4, {{header(VIRTIO_BLK_T_FLUSH, 0), 16, false}, {st, 1, true}});
  auto mapped = InflightRegion::map(UniqueFd(dup(region.get())), got.mmap_size, 0, 1, 16);
  ASSERT_TRUE(mapped.ok());
  InflightQueue iq = mapped->queue(0, 16);
  iq.taken(4);
  iq.returning(4);
  guest_.used()->ring[used % 16] = {4, 1};
  __atomic_store_n(&guest_.used()->idx, static_cast<uint16_t>(used + 1), __ATOMIC_RELEASE);
  open_connection();
  negotiate(region.get(), got, static_cast<uint16_t>(used + 1));
  EXPECT_FALSE(iq.is_inflight(4));  // settled: the ring shows it returned
  EXPECT_EQ(*guest_.at(st), 0xee);   // and it was not run again
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_FLUSH, 0), 16, false}, {status_byte(), 1, true}}).status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(guest_.used_idx(), used + 2);
}

// Interrupts the guest asked for, as the call eventfd counted them; resets the count.
uint64_t interrupts(int call) {
  uint64_t v = 0;
  return eventfd_read(call, &v) == 0 ? v : 0;
}

TEST_F(BlkTest, CoalescingHoldsInterruptsBackForMoreCompletions) {
  const uint64_t buf = guest_.alloc(512);
  auto read_one = [&] {
    return run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, true}, {status_byte(), 1, true}}).status;
  };
  // Without coalescing every completion the guest asked about interrupts it.
  (void)interrupts(call_.get());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(read_one(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(interrupts(call_.get()), 5u);
  // With it (any rate, up to 200 ms), the interrupts of a burst are shared...
  close_connection();
  coalescing_ = {200000, 0};
  open_connection();
  negotiate(-1, {}, guest_.used_idx());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(read_one(), VIRTIO_BLK_S_OK);
  EXPECT_LE(interrupts(call_.get()), 2u);
  // ...and the one held back still comes.
  EXPECT_TRUE(signalled());
}

TEST_F(BlkTest, AHotRemovedBdevFailsTheGuestsIoAndNothingElse) {
  const uint64_t buf = guest_.alloc(4096);
  ASSERT_EQ(run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 4096, true}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_OK);
  ASSERT_TRUE(bdev::unregister(bdev_).ok());
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 4096, true}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_OUT, 0), 16, false}, {buf, 4096, false}, {status_byte(), 1, true}}).status,
            VIRTIO_BLK_S_IOERR);
  // The connection still answers its front end.
  EXPECT_EQ(front_->get_u64(Request::get_queue_num), 2u);
}

TEST_F(BlkTest, TwoQueuesServeRequestsSideBySide) { two_queues_side_by_side(); }

// Queue 1 runs on the second reactor: started, served and stopped there by message.
class BlkSpreadTest : public BlkTest {
 protected:
  BlkSpreadTest() : BlkTest("0,1") {}
};

TEST_F(BlkSpreadTest, QueuesRunOnTheirOwnReactors) {
  two_queues_side_by_side();
  auto r1 = thread::reactor_stats(1);
  ASSERT_TRUE(r1.ok());
  EXPECT_GT(r1->busy_iterations, 0u);  // queue 1's poller (polled, no kicks) keeps it busy
  // GET_VRING_BASE stops it over there and reports where it stopped.
  front_->send_state(Request::get_vring_base, 1, 0);
  Message m;
  ASSERT_TRUE(front_->recv(&m));
  EXPECT_EQ(m.as<vhost_vring_state>().index, 1u);
  EXPECT_EQ(m.as<vhost_vring_state>().num, 2u);
}

TEST_F(BlkTest, AMalformedMessageClosesTheConnection) {
  front_->send_u64(Request::set_vring_kick, 5);  // no such ring, and no descriptor either
  EXPECT_TRUE(front_->closed_by_peer());
  EXPECT_TRUE(sluice::testing::wait_until([this] { return gone_.load(); }));
}

TEST_F(BlkTest, ARestartedBackEndResubmitsWhatTheInflightRegionHolds) {
  InflightWire got;
  UniqueFd region = fresh_inflight_region(&got);
  ASSERT_TRUE(region.valid());
  // Known data on the device, and a read of it that a back end took and died with: in the
  // ring, marked in flight in the region, never used.
  std::vector<uint8_t> pattern(4096);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 31 + 7);
  {
    sluice::testing::BdevHandle h(bdev_);
    ASSERT_TRUE(h.io().write(pattern.data(), 0, 4096 / h.bs()).ok());
  }
  // The dead back end had taken A (a read) and then B (a flush) and returned only B.
  const uint64_t buf = guest_.alloc(4096), st = status_byte(), st_b = status_byte();
  const uint16_t used = guest_.used_idx();
  guest_.add_chain(4, {{header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 4096, true}, {st, 1, true}});
  guest_.add_chain(8, {{header(VIRTIO_BLK_T_FLUSH, 0), 16, false}, {st_b, 1, true}});
  guest_.used()->ring[used % 16] = {8, 1};
  __atomic_store_n(&guest_.used()->idx, static_cast<uint16_t>(used + 1), __ATOMIC_RELEASE);
  auto taken = InflightRegion::map(UniqueFd(dup(region.get())), got.mmap_size, 0, 1, 16);
  ASSERT_TRUE(taken.ok()) << taken.status().to_string();
  InflightQueue iq = taken->queue(0, 16);
  iq.taken(4);
  // The restarted back end gets the region back and the used index as the ring's base (all
  // QEMU knows after a crash): it serves A again, and not B.
  open_connection();
  negotiate(region.get(), got, static_cast<uint16_t>(used + 1));
  ASSERT_TRUE(sluice::testing::wait_until([&] { return guest_.used_idx() == used + 2; }));
  EXPECT_EQ(guest_.used()->ring[(used + 1) % 16].id, 4u);
  EXPECT_EQ(*guest_.at(st), VIRTIO_BLK_S_OK);
  ASSERT_TRUE(thread::call_and_wait(0, [] { return Status::Ok(); }, 5000ms).ok());  // see above
  EXPECT_EQ(std::memcmp(guest_.at(buf), pattern.data(), 4096), 0);
  EXPECT_FALSE(iq.is_inflight(4));  // returned, in the shared region
  // The ring goes on after both, and B was not served again.
  EXPECT_EQ(run({{header(VIRTIO_BLK_T_FLUSH, 0), 16, false}, {status_byte(), 1, true}}).status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(guest_.used_idx(), used + 3);
  EXPECT_EQ(*guest_.at(st_b), 0xee);
}

}  // namespace
}  // namespace sluice::vhost
