#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/intrusive_list.h"
#include "base/mpsc_ring.h"
#include "base/spsc_ring.h"

namespace sluice {

TEST(SpscRing, FifoAndFull) {
  SpscRing<int> r(4);
  EXPECT_EQ(r.capacity(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.push(i));
  EXPECT_FALSE(r.push(99));
  int v;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(r.pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(r.pop(v));
  EXPECT_TRUE(r.empty());
}

TEST(SpscRing, TwoThreadsTransferEverythingInOrder) {
  SpscRing<uint64_t> r(64);
  constexpr uint64_t kN = 200000;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kN;)
      if (r.push(i)) ++i;
  });
  uint64_t expect = 0, v;
  while (expect < kN)
    if (r.pop(v)) {
      ASSERT_EQ(v, expect++);
    }
  producer.join();
}

TEST(MpscRing, FullAndEmpty) {
  MpscRing<int> r(2);
  EXPECT_TRUE(r.push(1));
  EXPECT_TRUE(r.push(2));
  EXPECT_FALSE(r.push(3));
  int v;
  EXPECT_TRUE(r.pop(v));
  EXPECT_EQ(v, 1);
  EXPECT_TRUE(r.push(3));
  EXPECT_TRUE(r.pop(v));
  EXPECT_EQ(v, 2);
  EXPECT_TRUE(r.pop(v));
  EXPECT_EQ(v, 3);
  EXPECT_TRUE(r.empty());
}

// Several producers hammer one consumer; every value arrives exactly once, and each
// producer's values arrive in the order it pushed them.
TEST(MpscRing, MultiProducerStress) {
  constexpr int kProducers = 4;
  constexpr uint64_t kPer = 50000;
  MpscRing<uint64_t> r(128);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (uint64_t i = 0; i < kPer;)
        if (r.push((static_cast<uint64_t>(p) << 32) | i)) ++i; else std::this_thread::yield();
    });
  }
  std::vector<uint64_t> next(kProducers, 0);
  uint64_t got = 0, v;
  while (got < kProducers * kPer) {
    if (!r.pop(v)) continue;
    auto p = static_cast<int>(v >> 32);
    ASSERT_LT(p, kProducers);
    ASSERT_EQ(v & 0xffffffffu, next[p]) << "producer " << p;
    ++next[p];
    ++got;
  }
  for (auto& t : producers) t.join();
  EXPECT_TRUE(r.empty());
}

struct Node {
  int value;
  Node* next = nullptr;
};

TEST(IntrusiveQueue, FifoAndTakeAll) {
  Node a{1}, b{2}, c{3};
  IntrusiveQueue<Node> q;
  q.push_back(&a);
  q.push_back(&b);
  q.push_front(&c);
  auto batch = q.take_all();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(batch.pop_front()->value, 3);
  EXPECT_EQ(batch.pop_front()->value, 1);
  EXPECT_EQ(batch.pop_front()->value, 2);
  EXPECT_EQ(batch.pop_front(), nullptr);
}

}  // namespace sluice
