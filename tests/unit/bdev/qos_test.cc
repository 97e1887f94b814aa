// Rate limits: the token buckets under an injected clock (accuracy over sliding one-second
// windows, fairness between channels, large requests), and the channel's waiting queue on
// a real device (every request completes, in order, and a removed limit frees them).
#include <algorithm>
#include <deque>
#include <vector>

#include <gtest/gtest.h>

#include "aligned_buffer.h"
#include "bdev/qos.h"
#include "bdev_handle.h"

namespace sluice::bdev {
namespace {

constexpr double kTicksPerSecond = 1e9;  // the injected clock counts nanoseconds
constexpr uint64_t kSecond = 1000000000;

struct Admitted {
  uint64_t at;
  int channel;
  uint64_t bytes;
};

// `channels` clients, each always with a request of `bytes` of `type` waiting, try in turn
// every `step` ns for `seconds`; returns what was admitted, when.
// Channel 0 asks first at every step, and asks `eager` times per step (a channel whose
// thread polls more often): shares must stay even all the same.
std::vector<Admitted> run(Qos& qos, int channels, IoType type, uint64_t bytes, uint64_t seconds, uint64_t step = 1000,
                          int eager = 3) {
  std::vector<Admitted> out;
  std::vector<QosTicket> tickets(channels);
  for (uint64_t now = 1; now < seconds * kSecond; now += step)
    for (int c = 0; c < channels; ++c)
      for (int tries = c == 0 ? eager : 1; tries > 0; --tries)
        if (qos.admit(type, bytes, now, tickets[c])) out.push_back({now, c, bytes});
  return out;
}

// Every one-second window starting at a multiple of 100 ms after the first second (the
// first starts from an empty bucket): the amount admitted within `tolerance` of `limit`.
void expect_windows(const std::vector<Admitted>& admitted, uint64_t seconds, double limit, bool count_bytes,
                    double tolerance = 0.05) {
  for (uint64_t start = kSecond / 10; start + kSecond <= seconds * kSecond; start += kSecond / 10) {
    double sum = 0;
    for (const Admitted& a : admitted)
      if (a.at >= start && a.at < start + kSecond) sum += count_bytes ? static_cast<double>(a.bytes) : 1.0;
    EXPECT_NEAR(sum, limit, limit * tolerance) << "window at " << start / 1e6 << " ms";
  }
}

void limit(Qos& q, const QosLimits& l) { q.set_limits(l, 0, kTicksPerSecond); }

TEST(QosBuckets, IopsLimitHoldsInEveryWindowAndChannelsShare) {
  Qos q;
  limit(q, {.rw_ios_per_sec = 10000});
  auto admitted = run(q, 2, IoType::read, 4096, 3);
  expect_windows(admitted, 3, 10000, false);
  const auto first = std::count_if(admitted.begin(), admitted.end(), [](const Admitted& a) { return a.channel == 0; });
  EXPECT_GT(first, static_cast<long>(admitted.size() * 4 / 10));
  EXPECT_LT(first, static_cast<long>(admitted.size() * 6 / 10));
}

TEST(QosBuckets, AnAbsentChannelLosesItsTurn) {
  Qos q;
  limit(q, {.rw_ios_per_sec = 1000});
  QosTicket present, absent;
  uint64_t now = 1;
  while (q.admit(IoType::read, 4096, now, present)) ++now;  // drain the balance
  EXPECT_FALSE(q.admit(IoType::read, 4096, now, absent));   // takes a ticket, then never asks again
  int admitted = 0;
  for (; now < kSecond; now += 1000) admitted += q.admit(IoType::read, 4096, now, present) ? 1 : 0;
  EXPECT_NEAR(admitted, 1000, 50);
  // The absent channel comes back: it lines up again and is served.
  bool served = false;
  for (uint64_t until = now + kSecond / 10; now < until && !served; now += 1000) served = q.admit(IoType::read, 4096, now, absent);
  EXPECT_TRUE(served);
}

TEST(QosBuckets, LowRatesEarnTheirFractions) {
  // At 10 IOPS and a try every microsecond, each refill earns a tiny fraction of a token:
  // they must add up rather than be rounded away.
  Qos q;
  limit(q, {.rw_ios_per_sec = 10});
  auto admitted = run(q, 1, IoType::write, 512, 5, 1000);
  EXPECT_NEAR(static_cast<double>(admitted.size()), 50, 2);
}

TEST(QosBuckets, ByteLimitsWithLargeRequests) {
  Qos q;
  limit(q, {.rw_bytes_per_sec = 10u << 20});
  auto admitted = run(q, 2, IoType::write, 128 << 10, 4);
  expect_windows(admitted, 4, 10u << 20, true);
}

TEST(QosBuckets, ARequestLargerThanTheBurstPassesAndIsPaidBack) {
  Qos q;
  limit(q, {.w_bytes_per_sec = 1u << 20});  // burst ~20 KiB
  auto admitted = run(q, 1, IoType::write, 1u << 20, 5);
  // One 1 MiB write per second of refill: about five, never a stall.
  EXPECT_GE(admitted.size(), 4u);
  EXPECT_LE(admitted.size(), 6u);
}

TEST(QosBuckets, PerDirectionLimitsAndTheirCombination) {
  Qos reads;
  limit(reads, {.r_bytes_per_sec = 1u << 20});
  QosTicket ticket;
  for (uint64_t i = 1; i <= 1000; ++i) ASSERT_TRUE(reads.admit(IoType::write, 1u << 20, i, ticket)) << "a read limit limited a write";
  expect_windows(run(reads, 1, IoType::read, 4096, 3), 3, 1u << 20, true);

  // 1000 IOPS and 1 MiB/s with 4 KiB requests: the byte limit binds (256 IOPS).
  Qos both;
  limit(both, {.rw_ios_per_sec = 1000, .rw_bytes_per_sec = 1u << 20});
  expect_windows(run(both, 2, IoType::read, 4096, 3), 3, 256, false);
  // Flushes and unmaps are never limited.
  QosTicket other;
  EXPECT_TRUE(both.admit(IoType::flush, 0, 1, other));
  EXPECT_TRUE(both.admit(IoType::unmap, 1u << 30, 1, other));
}

TEST(QosBuckets, ChangingAndRemovingLimits) {
  Qos q;
  limit(q, {.rw_ios_per_sec = 100});
  EXPECT_EQ(q.limits().rw_ios_per_sec, 100u);
  q.set_limits({.rw_ios_per_sec = 1000}, 0, kTicksPerSecond);
  expect_windows(run(q, 1, IoType::read, 4096, 3), 3, 1000, false);
  q.set_limits({}, 0, kTicksPerSecond);
  EXPECT_FALSE(q.enabled());
}

// The channel: a limited device still completes every request, oldest first; lifting the
// limit starts the waiting ones at the next poll.
TEST(QosChannel, WaitingRequestsCompleteInOrder) {
  const std::string name = testing::unique_name("qos");
  ASSERT_TRUE(create("malloc:1M?bs=4096&rw_ios_per_sec=400", name).ok());
  EXPECT_EQ(find(name)->qos_limits().rw_ios_per_sec, 400u);
  {
    testing::BdevHandle h(name);
    ASSERT_NE(h.ch, nullptr);
    testing::AlignedBuffer buf(4096);
    constexpr int kRequests = 40;
    std::vector<int> order;
    struct Ctx {
      std::vector<int>* order;
      int id;
    };
    std::deque<Ctx> ctx;
    for (int i = 0; i < kRequests; ++i) {
      ctx.push_back({&order, i});
      ASSERT_TRUE(h.desc->read(h.ch, buf.data(), i, 1,
                               [](void* a, Errc st) {
                                 auto* c = static_cast<Ctx*>(a);
                                 if (st == Errc::ok) c->order->push_back(c->id);
                               },
                               &ctx.back())
                      .ok());
    }
    ASSERT_TRUE(testing::poll_until(h.ch, [&] { return order.size() == kRequests; }));
    for (int i = 0; i < kRequests; ++i) EXPECT_EQ(order[i], i);
    EXPECT_GT(find(name)->stats().throttled.get(), 0u);

    // A limit too low to finish within the bounded wait, then lifted: the rest complete.
    ASSERT_TRUE(set_qos_limits(name, {.rw_ios_per_sec = 1}).ok());
    order.clear();
    for (int i = 0; i < kRequests; ++i)
      ASSERT_TRUE(h.desc->read(h.ch, buf.data(), i, 1,
                               [](void* a, Errc st) {
                                 auto* c = static_cast<Ctx*>(a);
                                 if (st == Errc::ok) c->order->push_back(c->id);
                               },
                               &ctx[i])
                      .ok());
    h.ch->poll();
    EXPECT_LT(order.size(), static_cast<size_t>(kRequests));
    ASSERT_TRUE(set_qos_limits(name, {}).ok());
    ASSERT_TRUE(testing::poll_until(h.ch, [&] { return order.size() == kRequests; }));
  }
  ASSERT_TRUE(unregister(name).ok());
}

TEST(QosChannel, RemovingTheDeviceFailsWaitingRequests) {
  const std::string name = testing::unique_name("qos");
  ASSERT_TRUE(create("malloc:1M?bs=4096&rw_ios_per_sec=1", name).ok());
  testing::BdevHandle h(name);
  ASSERT_NE(h.ch, nullptr);
  testing::AlignedBuffer buf(4096);
  std::vector<Errc> done;
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(h.desc->read(h.ch, buf.data(), i, 1, [](void* a, Errc st) { static_cast<std::vector<Errc>*>(a)->push_back(st); },
                             &done)
                    .ok());
  h.ch->poll();
  ASSERT_TRUE(unregister(name).ok());
  ASSERT_TRUE(testing::poll_until(h.ch, [&] { return done.size() == 8; }));
  EXPECT_EQ(std::count(done.begin(), done.end(), Errc::aborted), 8 - std::count(done.begin(), done.end(), Errc::ok));
  EXPECT_GE(std::count(done.begin(), done.end(), Errc::aborted), 6);
}

TEST(QosChannel, BadLimitOptionsAreRefused) {
  EXPECT_EQ(create("malloc:1M?rw_ios_per_sec=abc").status().code(), Errc::invalid_argument);
  EXPECT_EQ(create("malloc:1M?w_mbytes_per_sec=99999999999999").status().code(), Errc::out_of_range);
  EXPECT_EQ(set_qos_limits("no-such-bdev", {}).code(), Errc::not_found);
}

}  // namespace
}  // namespace sluice::bdev
