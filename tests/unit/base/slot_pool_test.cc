#include <set>

#include <gtest/gtest.h>

#include "base/slot_pool.h"

namespace sluice {

struct TestSlot {
  int id = 0;
  TestSlot* next_free = nullptr;
};

TEST(SlotPool, EverySlotOnceThenWhatWasPutBack) {
  SlotPool<TestSlot> pool(3);
  for (size_t i = 0; i < pool.slots().size(); ++i) pool.slots()[i].id = static_cast<int>(i);
  std::set<TestSlot*> taken;
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(pool.empty());
    taken.insert(pool.take());
  }
  EXPECT_EQ(taken.size(), 3u);
  EXPECT_TRUE(pool.empty());
  TestSlot* back = &pool.slots()[1];
  pool.put_back(back);
  ASSERT_FALSE(pool.empty());
  EXPECT_EQ(pool.take(), back);
  EXPECT_EQ(back->id, 1) << "a slot keeps what was set up in it";
  EXPECT_TRUE(pool.empty());
}

}  // namespace sluice
