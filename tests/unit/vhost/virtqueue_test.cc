// SplitQueue and the descriptor-chain walker against a fake guest's ring: good chains,
// indirect tables, every malformed chain the walker must refuse, the used ring and the
// notification rules.
#include "target/vhost/virtio_ring.h"

#include <vector>

#include <gtest/gtest.h>

#include "fake_guest.h"
#include "target/vhost/descriptor_chain.h"
#include "target/vhost/virtqueue.h"

namespace sluice::vhost {
namespace {

using testing::FakeGuest;

class VirtqueueTest : public ::testing::Test {
 protected:
  VirtqueueTest() : guest_(1 << 20, 16), mem_(guest_.map()) {}

  void attach(bool event_idx = false) {
    Status st = q_.attach(mem_, guest_.queue_size(), guest_.rings(), 0, event_idx);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  // Pops the next head and walks its chain.
  ChainError next_chain(Chain* chain, uint16_t* head = nullptr) {
    uint16_t h = 0;
    EXPECT_TRUE(q_.pop(&h));
    if (head != nullptr) *head = h;
    return q_.walk(h, segs_, chain);
  }

  FakeGuest guest_;
  GuestMemory mem_;
  SplitQueue q_;
  Segment segs_[32];  // more than the ring has, so a loop shows as one
};

TEST_F(VirtqueueTest, WalksADirectChain) {
  attach();
  const uint64_t hdr = guest_.alloc(16), data = guest_.alloc(4096), status = guest_.alloc(1);
  guest_.add_chain(3, {{hdr, 16, false}, {data, 4096, true}, {status, 1, true}});
  Chain c;
  uint16_t head;
  ASSERT_EQ(next_chain(&c, &head), ChainError::none);
  EXPECT_EQ(head, 3);
  ASSERT_EQ(c.segments, 3u);
  EXPECT_EQ(c.readable_bytes, 16u);
  EXPECT_EQ(c.writable_bytes, 4097u);
  EXPECT_EQ(segs_[0].host, mem_.host_range(hdr, 16));  // the back end's own mapping
  EXPECT_FALSE(segs_[0].writable);
  EXPECT_EQ(segs_[1].host, mem_.host_range(data, 4096));
  EXPECT_TRUE(segs_[2].writable);
  uint16_t again;
  EXPECT_FALSE(q_.pop(&again));  // nothing more available
  EXPECT_EQ(q_.last_avail(), 1);
}

TEST_F(VirtqueueTest, WalksAnIndirectTable) {
  attach();
  const uint64_t table = guest_.alloc(3 * sizeof(vring_desc));
  auto* t = reinterpret_cast<vring_desc*>(guest_.at(table));
  const uint64_t a = guest_.alloc(16), b = guest_.alloc(512);
  t[0] = {a, 16, VRING_DESC_F_NEXT, 2};  // out of order on purpose
  t[2] = {b, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1};
  t[1] = {b + 512, 1, VRING_DESC_F_WRITE, 0};
  guest_.desc()[0] = {table, 3 * sizeof(vring_desc), VRING_DESC_F_INDIRECT, 0};
  guest_.make_available(0);
  Chain c;
  ASSERT_EQ(next_chain(&c), ChainError::none);
  ASSERT_EQ(c.segments, 3u);
  EXPECT_EQ(segs_[1].host, mem_.host_range(b, 512));
  EXPECT_EQ(segs_[2].len, 1u);
  EXPECT_EQ(c.writable_bytes, 513u);
}

TEST_F(VirtqueueTest, RefusesMalformedChains) {
  attach();
  const uint64_t buf = guest_.alloc(4096);
  vring_desc* d = guest_.desc();
  struct Case {
    const char* what;
    std::vector<vring_desc> descs;  // written from descriptor 0
    ChainError want;
  };
  const uint64_t outside = testing::kGuestBase + (1 << 20);
  const uint64_t table = guest_.alloc(4 * sizeof(vring_desc));
  auto* t = reinterpret_cast<vring_desc*>(guest_.at(table));
  t[0] = {buf, 8, VRING_DESC_F_NEXT, 0};  // an indirect table looping on itself
  t[1] = {table, 16, VRING_DESC_F_INDIRECT, 0};
  t[2] = {buf, 8, VRING_DESC_F_NEXT, 9};
  const std::vector<Case> cases = {
      {"next beyond the table", {{buf, 8, VRING_DESC_F_NEXT, 16}}, ChainError::next_out_of_range},
      {"a loop", {{buf, 8, VRING_DESC_F_NEXT, 1}, {buf, 8, VRING_DESC_F_NEXT, 0}}, ChainError::too_long},
      {"a self loop", {{buf, 8, VRING_DESC_F_NEXT, 0}}, ChainError::too_long},
      {"buffer outside memory", {{outside, 8, 0, 0}}, ChainError::bad_address},
      {"buffer crossing the end", {{outside - 4, 8, 0, 0}}, ChainError::bad_address},
      {"4 GiB buffer in a 1 MiB guest", {{buf, 0xffffffff, 0, 0}}, ChainError::bad_address},
      {"readable after writable",
       {{buf, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1}, {buf, 8, 0, 0}},
       ChainError::readable_after_writable},
      {"empty indirect table", {{table, 0, VRING_DESC_F_INDIRECT, 0}}, ChainError::bad_indirect_table},
      {"ragged indirect table", {{table, 20, VRING_DESC_F_INDIRECT, 0}}, ChainError::bad_indirect_table},
      {"indirect with next", {{table, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1}}, ChainError::bad_indirect_table},
      {"indirect table outside memory", {{outside, 16, VRING_DESC_F_INDIRECT, 0}}, ChainError::bad_address},
      {"loop inside an indirect table", {{table, 16, VRING_DESC_F_INDIRECT, 0}}, ChainError::too_long},
      {"nested indirect", {{table + 16, 16, VRING_DESC_F_INDIRECT, 0}}, ChainError::nested_indirect},
      {"next beyond an indirect table", {{table + 32, 16, VRING_DESC_F_INDIRECT, 0}}, ChainError::next_out_of_range},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    for (size_t i = 0; i < c.descs.size(); ++i) d[i] = c.descs[i];
    guest_.make_available(0);
    Chain chain;
    ChainError got = next_chain(&chain);
    EXPECT_EQ(got, c.want) << chain_error_name(got);
  }
  EXPECT_FALSE(q_.broken());  // a bad chain fails one request, not the queue
}

TEST_F(VirtqueueTest, RefusesMoreSegmentsThanTheCallerTakes) {
  attach();
  const uint64_t buf = guest_.alloc(4096);
  std::vector<FakeGuest::Buf> bufs(9, {buf, 8, false});
  guest_.add_chain(0, bufs);
  uint16_t h;
  ASSERT_TRUE(q_.pop(&h));
  Chain c;
  EXPECT_EQ(q_.walk(h, std::span(segs_, 8), &c), ChainError::too_many_segments);
  EXPECT_EQ(c.segments, 8u);
}

TEST_F(VirtqueueTest, AHeadBeyondTheTableBreaksTheQueue) {
  attach();
  guest_.make_available(16);
  uint16_t h;
  EXPECT_FALSE(q_.pop(&h));
  EXPECT_TRUE(q_.broken());
  // A fresh attach (a restarted ring) clears it.
  attach();
  EXPECT_FALSE(q_.broken());
  // walk() refuses an out-of-range head too.
  Chain c;
  EXPECT_EQ(q_.walk(16, segs_, &c), ChainError::head_out_of_range);
}

TEST_F(VirtqueueTest, AnAvailableIndexTooFarAheadBreaksTheQueue) {
  attach();
  guest_.avail()->idx = 17;  // 17 new entries on a 16-entry ring
  uint16_t h;
  EXPECT_FALSE(q_.pop(&h));
  EXPECT_TRUE(q_.broken());
}

TEST_F(VirtqueueTest, RefusesRingsOutsideMemoryOrMisaligned) {
  RingAddrs a = guest_.rings();
  a.used = testing::kUserBase + (1 << 20) - 8;  // the used ring would run off the end
  EXPECT_EQ(q_.attach(mem_, 16, a, 0, false).code(), Errc::out_of_range);
  a = guest_.rings();
  a.desc += 8;
  EXPECT_EQ(q_.attach(mem_, 16, a, 0, false).code(), Errc::invalid_argument);
  EXPECT_EQ(q_.attach(mem_, 12, guest_.rings(), 0, false).code(), Errc::invalid_argument);
  EXPECT_FALSE(q_.attached());
  // Aligned front-end addresses in a region whose user address is odd: the host addresses
  // would be misaligned (found by vhost_session_fuzz).
  static uint8_t ram[64 << 10];
  RegionSpec odd{0x0, sizeof ram - 8, 0x10001, 0};
  uint8_t* host[1] = {ram + 8};
  auto mem = GuestMemory::borrow({&odd, 1}, host);
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(q_.attach(*mem, 16, {0x10010, 0x10410, 0x10810}, 0, false).code(), Errc::invalid_argument);
}

TEST_F(VirtqueueTest, UsedRingAndResumeIndex) {
  guest_.used()->idx = 5;  // where a previous back end left it
  Status st = q_.attach(mem_, 16, guest_.rings(), 5, false);
  ASSERT_TRUE(st.ok());
  guest_.avail()->idx = 5;
  const uint64_t buf = guest_.alloc(64);
  guest_.add_chain(2, {{buf, 64, true}});
  uint16_t h;
  ASSERT_TRUE(q_.pop(&h));
  q_.push_used(h, 64);
  EXPECT_EQ(guest_.used_idx(), 6);
  EXPECT_EQ(guest_.used()->ring[5].id, 2u);
  EXPECT_EQ(guest_.used()->ring[5].len, 64u);
  EXPECT_EQ(q_.last_avail(), 6);
}

TEST_F(VirtqueueTest, SignalsUnlessTheGuestSuppressesInterrupts) {
  attach(false);
  const uint64_t buf = guest_.alloc(64);
  guest_.add_chain(0, {{buf, 64, true}});
  uint16_t h;
  ASSERT_TRUE(q_.pop(&h));
  EXPECT_FALSE(q_.need_signal());  // nothing used yet
  q_.push_used(h, 0);
  EXPECT_TRUE(q_.need_signal());
  EXPECT_FALSE(q_.need_signal());  // already signalled for that one
  guest_.avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
  guest_.add_chain(1, {{buf, 64, true}});
  ASSERT_TRUE(q_.pop(&h));
  q_.push_used(h, 0);
  EXPECT_FALSE(q_.need_signal());
}

TEST_F(VirtqueueTest, EventIdxSignalsWhenUsedPassesUsedEvent) {
  attach(true);
  const uint64_t buf = guest_.alloc(64);
  guest_.used_event() = 1;  // interrupt once the second completion is used
  uint16_t h;
  for (uint16_t i = 0; i < 3; ++i) guest_.add_chain(i, {{buf, 64, true}});
  ASSERT_TRUE(q_.pop(&h));
  q_.push_used(h, 0);
  EXPECT_FALSE(q_.need_signal());  // used 0 -> 1 does not pass used_event 1
  ASSERT_TRUE(q_.pop(&h));
  q_.push_used(h, 0);
  EXPECT_TRUE(q_.need_signal());  // 1 -> 2 passes it
  ASSERT_TRUE(q_.pop(&h));
  q_.push_used(h, 0);
  EXPECT_FALSE(q_.need_signal());  // the guest has not asked again
  // avail_event tells the guest where we are, so it kicks for the next one only.
  q_.publish_avail_event();
  EXPECT_EQ(guest_.avail_event(), 3);
}

// Kick suppression without EVENT_IDX: the flag is up while the device polls and down before
// it sleeps, and a request added while it was up is found by the look after the flag went down.
TEST_F(VirtqueueTest, NoNotifyIsSetWhilePollingAndClearedBeforeSleep) {
  guest_.used()->flags = VRING_USED_F_NO_NOTIFY;  // what a back end that died polling left
  attach(false);
  EXPECT_FALSE(q_.enable_kicks()) << "nothing available";
  EXPECT_EQ(guest_.used()->flags, 0) << "a new back end turns kicks back on";
  const uint64_t buf = guest_.alloc(64);
  guest_.add_chain(0, {{buf, 64, true}});
  uint16_t h;
  ASSERT_TRUE(q_.pop(&h));
  q_.suppress_kicks();
  EXPECT_FALSE(q_.kicks_enabled());
  EXPECT_EQ(guest_.used()->flags, VRING_USED_F_NO_NOTIFY);
  // The guest adds a request while kicks are off: it does not kick, so the device must see
  // it when it turns them back on.
  guest_.add_chain(1, {{buf, 64, true}});
  EXPECT_TRUE(q_.enable_kicks()) << "a request that came without a kick must stop the sleep";
  EXPECT_EQ(guest_.used()->flags, 0);
  ASSERT_TRUE(q_.pop(&h));
  EXPECT_EQ(h, 1);
  EXPECT_FALSE(q_.enable_kicks()) << "all taken: the device may sleep";
  EXPECT_TRUE(q_.kicks_enabled());
}

// With EVENT_IDX: avail_event stays behind while the device polls, so the guest's
// vring_need_event() says no kick; before a sleep it moves to where the device stands.
TEST_F(VirtqueueTest, EventIdxLeavesAvailEventBehindWhilePolling) {
  attach(true);
  EXPECT_FALSE(q_.enable_kicks());
  EXPECT_EQ(guest_.avail_event(), 0);
  const uint64_t buf = guest_.alloc(64);
  uint16_t h;
  uint16_t old_avail = guest_.avail()->idx;
  guest_.add_chain(0, {{buf, 64, true}});
  EXPECT_TRUE(vring_need_event(guest_.avail_event(), guest_.avail()->idx, old_avail)) << "kicks are on";
  ASSERT_TRUE(q_.pop(&h));
  q_.suppress_kicks();
  EXPECT_EQ(guest_.used()->flags, 0) << "EVENT_IDX uses avail_event alone";
  for (uint16_t i = 1; i < 4; ++i) {
    old_avail = guest_.avail()->idx;
    guest_.add_chain(i, {{buf, 64, true}});
    EXPECT_FALSE(vring_need_event(guest_.avail_event(), guest_.avail()->idx, old_avail))
        << "request " << i << " would kick a polling device";
    ASSERT_TRUE(q_.pop(&h));
  }
  old_avail = guest_.avail()->idx;
  guest_.add_chain(4, {{buf, 64, true}});  // in the window before the device re-enables
  EXPECT_TRUE(q_.enable_kicks());
  EXPECT_EQ(guest_.avail_event(), 4) << "published where the device stands";
  ASSERT_TRUE(q_.pop(&h));
  EXPECT_FALSE(q_.enable_kicks());
  EXPECT_EQ(guest_.avail_event(), 5);
  old_avail = guest_.avail()->idx;
  guest_.add_chain(5, {{buf, 64, true}});
  EXPECT_TRUE(vring_need_event(guest_.avail_event(), guest_.avail()->idx, old_avail)) << "a sleeping device is kicked";
}

// A broken queue yields nothing: it must not keep its reactor from sleeping either.
TEST_F(VirtqueueTest, ABrokenQueueDoesNotHoldOffSleep) {
  attach(false);
  guest_.avail()->idx = 100;  // more than the ring size ahead
  uint16_t h;
  EXPECT_FALSE(q_.pop(&h));
  ASSERT_TRUE(q_.broken());
  EXPECT_FALSE(q_.enable_kicks());
}

}  // namespace
}  // namespace sluice::vhost
