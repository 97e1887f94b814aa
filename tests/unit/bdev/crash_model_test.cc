// The power-cut model alone, with no device: what the overlay hides, what a flush retires,
// and the fate of every cached write at a cut (crashsim.h, "The model").
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include <gtest/gtest.h>

#include "bdev/crash_model.h"

namespace sluice::bdev {
namespace {

std::unique_ptr<CrashEntry> write_of(uint64_t offset, uint64_t blocks) {
  auto e = std::make_unique<CrashEntry>();
  e->offset_blocks = offset;
  e->num_blocks = blocks;
  e->data.reset(static_cast<char*>(std::malloc(blocks * 512)));
  std::memset(e->data.get(), static_cast<int>(offset), blocks * 512);
  return e;
}

// The newest entry seen at each block, from the extent map.
std::map<uint64_t, uint64_t> owner_by_block(const CrashModel& m) {
  std::map<uint64_t, uint64_t> out;
  for (auto& [start, ext] : m.extents)
    for (uint64_t b = start; b < ext.end; ++b) out[b] = ext.entry->seq;
  return out;
}

TEST(CrashModel, TheNewestWriteHidesWhatItOverlaps) {
  CrashModel m;
  m.insert(write_of(0, 8));   // seq 0: blocks 0..7
  m.insert(write_of(2, 3));   // seq 1: blocks 2..4
  m.insert(write_of(4, 6));   // seq 2: blocks 4..9
  auto owners = owner_by_block(m);
  ASSERT_EQ(owners.size(), 10u);
  EXPECT_EQ(owners[0], 0u);
  EXPECT_EQ(owners[1], 0u);
  EXPECT_EQ(owners[2], 1u);
  EXPECT_EQ(owners[3], 1u);
  for (uint64_t b = 4; b < 10; ++b) EXPECT_EQ(owners[b], 2u) << b;
  EXPECT_EQ(m.pending_bytes, (8 + 3 + 6) * 512u);
}

TEST(CrashModel, AFlushRetiresWhatItCoversAndNothingElse) {
  CrashModel m;
  for (uint64_t i = 0; i < 5; ++i) m.insert(write_of(i * 2, 2));
  m.retire_durable(3);
  EXPECT_EQ(m.durable_frontier(), 3u);
  EXPECT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.flushed_writes, 3u);
  EXPECT_EQ(m.pending_bytes, 2 * 2 * 512u);
  auto owners = owner_by_block(m);
  EXPECT_EQ(owners.size(), 4u);  // only blocks 6..9 are still cached
  EXPECT_FALSE(owners.contains(0));
  // A cut now decides only the two cached writes.
  m.seed = 7;
  m.cut();
  EXPECT_EQ(m.kept + m.lost + m.torn, 2u);
}

TEST(CrashModel, BoundariesCountUntilTheCutPoint) {
  CrashModel m;
  m.cut_at = 4;
  EXPECT_TRUE(m.admit_boundary());
  EXPECT_TRUE(m.admit_boundary());
  EXPECT_TRUE(m.admit_boundary());
  EXPECT_FALSE(m.admit_boundary());  // boundary 4 never takes effect
  EXPECT_TRUE(m.off);
  EXPECT_TRUE(m.off_flag.load());
  EXPECT_EQ(m.boundaries, 3u);
  EXPECT_FALSE(m.admit_boundary());  // and nothing after it
}

// Over many seeds: each write is kept whole, lost, or torn into a proper non-empty subset of
// its own blocks; one-block writes never tear; a write a flush already sent is kept; the
// plan lists survivors in issue order.
TEST(CrashModel, EveryCachedWriteGetsOneFateAndTearsAreProperSubsets) {
  uint64_t kept = 0, lost = 0, torn = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    CrashModel m;
    m.seed = seed;
    m.insert(write_of(0, 1));     // seq 0: one block
    m.insert(write_of(10, 16));   // seq 1
    m.insert(write_of(40, 3));    // seq 2
    m.insert(write_of(100, 64));  // seq 3
    m.destaged_upto = 1;          // a flush had sent seq 0 to the base
    m.cut();
    ASSERT_TRUE(m.off);
    EXPECT_TRUE(m.entries.empty());
    EXPECT_EQ(m.retired.size(), 4u);
    EXPECT_EQ(m.kept + m.lost + m.torn, 4u);
    EXPECT_GE(m.destaged, 1u);
    std::map<uint64_t, uint64_t> blocks_per_seq;
    uint64_t last_seq = 0;
    for (const CrashPlanItem& p : m.plan) {
      EXPECT_GE(p.entry->seq, last_seq) << "plan out of issue order, seed " << seed;
      last_seq = p.entry->seq;
      EXPECT_GT(p.count, 0u);
      EXPECT_LE(p.first + p.count, p.entry->num_blocks);
      blocks_per_seq[p.entry->seq] += p.count;
    }
    EXPECT_EQ(blocks_per_seq[0], 1u) << "the destaged write must survive whole, seed " << seed;
    for (auto& [seq, n] : blocks_per_seq) {
      const uint64_t size = m.retired[seq]->num_blocks;
      EXPECT_LE(n, size);
    }
    kept += m.kept;
    lost += m.lost;
    torn += m.torn;
  }
  // All three fates occur (the seeds are fixed: this is deterministic).
  EXPECT_GT(kept, 300u);  // at least the destaged write each time
  EXPECT_GT(lost, 0u);
  EXPECT_GT(torn, 0u);
}

TEST(CrashModel, OutcomeMaskRestrictsTheFates) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    CrashModel m;
    m.seed = seed;
    m.outcomes = kCrashTear;
    m.insert(write_of(0, 8));
    m.insert(write_of(20, 1));  // cannot tear: lost instead
    m.cut();
    EXPECT_EQ(m.torn, 1u);
    EXPECT_EQ(m.lost, 1u);
    EXPECT_EQ(m.kept, 0u);
    uint64_t survived = 0;
    for (auto& p : m.plan) survived += p.count;
    EXPECT_GT(survived, 0u);
    EXPECT_LT(survived, 8u);
  }
}

TEST(CrashModel, TheSameSeedGivesTheSameImage) {
  auto plan_of = [](uint64_t seed) {
    CrashModel m;
    m.seed = seed;
    for (uint64_t i = 0; i < 20; ++i) m.insert(write_of(i * 8, 8));
    m.cut();
    std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> out;
    for (auto& p : m.plan) out.emplace_back(p.entry->seq, p.first, p.count);
    return out;
  };
  EXPECT_EQ(plan_of(42), plan_of(42));
  EXPECT_NE(plan_of(42), plan_of(43));
}

}  // namespace
}  // namespace sluice::bdev
