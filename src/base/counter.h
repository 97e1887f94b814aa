// A statistics counter with one writer and any number of readers.
//
// The owning thread adds with a relaxed load and store (no locked instruction, so it costs
// what a plain increment costs); other threads read a value that is at most a little stale.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice {

class Counter {
 public:
  Counter() = default;
  Counter(const Counter& o) : v_(o.get()) {}
  Counter& operator=(const Counter& o) {
    v_.store(o.get(), std::memory_order_relaxed);
    return *this;
  }
  void add(uint64_t by = 1) { v_.store(v_.load(std::memory_order_relaxed) + by, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace sluice
