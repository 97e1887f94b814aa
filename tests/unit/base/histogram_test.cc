#include "base/histogram.h"

#include <gtest/gtest.h>

namespace sluice {

TEST(Histogram, BucketsAreMonotonicAndCoverValues) {
  for (uint64_t v : {0ull, 1ull, 15ull, 16ull, 17ull, 1000ull, 123456789ull, ~0ull}) {
    int i = Histogram::index_of(v);
    EXPECT_GE(Histogram::upper_edge(i), v) << v;
    if (i > 0) {
      EXPECT_LT(Histogram::upper_edge(i - 1), v) << v;
    }
  }
}

TEST(Histogram, PercentilesWithinBucketError) {
  Histogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_NEAR(h.mean(), 5000.5, 0.01);
  auto p50 = static_cast<double>(h.percentile(0.5));
  auto p99 = static_cast<double>(h.percentile(0.99));
  EXPECT_NEAR(p50, 5000, 5000 * 0.07);
  EXPECT_NEAR(p99, 9900, 9900 * 0.07);
  EXPECT_GE(h.percentile(1.0), 10000u);
}

TEST(Histogram, MergeAddsCounts) {
  Histogram a, b;
  a.record(10);
  b.record(20);
  b.record(30);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_NEAR(a.mean(), 20.0, 1e-9);
  Histogram copy(a);
  EXPECT_EQ(copy.count(), 3u);
}

}  // namespace sluice
