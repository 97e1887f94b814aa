#include "base/histogram.h"

#include <cmath>

namespace sluice {

void Histogram::merge(const Histogram& other) {
  // Single-writer counters, so a plain add of our own is safe while `other` is read relaxed.
  for (int i = 0; i < kBuckets; ++i) bump(counts_[i], other.counts_[i].load(std::memory_order_relaxed));
  bump(total_, other.total_.load(std::memory_order_relaxed));
  bump(sum_, other.sum_.load(std::memory_order_relaxed));
}

void Histogram::reset() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  total_.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
}

double Histogram::mean() const {
  uint64_t n = count();
  return n ? static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(n) : 0.0;
}

uint64_t Histogram::upper_edge(int index) {
  if (index < kSub) return static_cast<uint64_t>(index);
  int shift = index / kSub - 1;
  uint64_t sub = static_cast<uint64_t>(index % kSub);
  uint64_t base = (uint64_t{kSub} | sub) << shift;
  return base + ((uint64_t{1} << shift) - 1);
}

uint64_t Histogram::percentile(double fraction) const {
  uint64_t total = 0;
  std::array<uint64_t, kBuckets> snap;
  for (int i = 0; i < kBuckets; ++i) total += snap[i] = counts_[i].load(std::memory_order_relaxed);
  if (total == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(fraction * static_cast<double>(total)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += snap[i];
    if (seen >= rank) return upper_edge(i);
  }
  return upper_edge(kBuckets - 1);
}

}  // namespace sluice
