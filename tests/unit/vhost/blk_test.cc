// virtio-blk through a real vhost-user connection on a reactor: a fake front end on this
// thread sets the device up over a socketpair (memfd guest memory, eventfd kick and call)
// and drives requests through a split ring, the bdev a malloc device.
#include <linux/virtio_blk.h>
#include <sys/eventfd.h>

#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "blk_fixture.h"

namespace sluice::vhost {
namespace {

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
  // Without coalescing every completion the guest asked about interrupts it. Each is waited
  // for: the back end checks used_event after it publishes the used index that run() waits
  // on, and the next run() moves used_event past this completion (as a guest that has seen it
  // may), which would make that check say no interrupt.
  (void)interrupts(call_.get());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(read_one(), VIRTIO_BLK_S_OK);
    EXPECT_TRUE(signalled()) << "request " << i << " completed without an interrupt";
  }
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
