// A bounded multi-producer single-consumer ring (D. Vyukov's bounded queue with a sequence
// number per slot). Producers claim a slot with one CAS; the consumer never writes a shared
// index that producers contend on. Used for cross-reactor messages.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/spsc_ring.h"  // kCacheLine

namespace sluice {

template <typename T>
class MpscRing {
 public:
  explicit MpscRing(size_t capacity)
      : mask_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity) - 1), slots_(new Slot[mask_ + 1]) {
    for (size_t i = 0; i <= mask_; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }

  size_t capacity() const { return mask_ + 1; }

  // Any thread. Returns false when the ring is full.
  bool push(const T& v) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& s = slots_[pos & mask_];
      size_t seq = s.seq.load(std::memory_order_acquire);
      auto diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          s.value = v;
          s.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // The single consumer only.
  bool pop(T& out) {
    Slot& s = slots_[head_ & mask_];
    size_t seq = s.seq.load(std::memory_order_acquire);
    if (seq != head_ + 1) return false;  // empty, or a producer is mid-write
    out = s.value;
    s.seq.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    return true;
  }

  // The consumer only; a racing producer may make this stale at once.
  bool empty() const {
    return slots_[head_ & mask_].seq.load(std::memory_order_acquire) != head_ + 1;
  }

 private:
  struct alignas(kCacheLine) Slot {
    std::atomic<size_t> seq;
    T value;
  };
  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;
  alignas(kCacheLine) std::atomic<size_t> tail_{0};
  alignas(kCacheLine) size_t head_ = 0;
};

}  // namespace sluice
