// A log-linear latency histogram: constant-time record, ~6% relative bucket width.
//
// Values (usually TSC ticks) fall into a major bucket by their highest set bit and one of
// 16 sub-buckets below it, as in SPDK's histogram_data.h. Recording is a bit scan and an
// increment, cheap enough for every I/O.
//
// Single writer, many readers: only the owning thread records (a relaxed load and store, no
// locked instruction); any thread may take a snapshot() at any time.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace sluice {

class Histogram {
 public:
  static constexpr int kSubBits = 4;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (64 - kSubBits + 1) * kSub;

  Histogram() = default;
  Histogram(const Histogram& other) { merge(other); }
  Histogram& operator=(const Histogram& other) {
    if (this != &other) { reset(); merge(other); }
    return *this;
  }

  void record(uint64_t value) {
    bump(counts_[index_of(value)], 1);
    bump(total_, 1);
    bump(sum_, value);
  }
  // Adds another histogram's counts; `other` may be written concurrently by its owner.
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return total_.load(std::memory_order_relaxed); }
  double mean() const;
  // The value below which `fraction` (0..1) of the recorded values fall: the upper edge of
  // the bucket holding that rank.
  uint64_t percentile(double fraction) const;

  static int index_of(uint64_t value) {
    if (value < kSub) return static_cast<int>(value);
    int msb = 63 - std::countl_zero(value);
    int shift = msb - kSubBits;
    int sub = static_cast<int>((value >> shift) & (kSub - 1));
    return (shift + 1) * kSub + sub;
  }
  static uint64_t upper_edge(int index);

 private:
  static void bump(std::atomic<uint64_t>& a, uint64_t by) {
    a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> sum_{0};
};

}  // namespace sluice
