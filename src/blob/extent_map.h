// A blob's cluster map: blob cluster index -> device cluster + 1 (0 = unallocated).
//
// Sparse (a huge thin blob costs memory only for the regions it has touched) and readable
// from data-path threads while the metadata thread changes it: entries are atomics, leaves
// never move, and a grown directory is published with release semantics while the old one
// is retired (kept until the map dies) so a reader holding it stays safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::blob {

class ExtentMap {
 public:
  static constexpr uint32_t kLeafBits = 10;
  static constexpr uint64_t kLeafSize = uint64_t{1} << kLeafBits;

  ExtentMap() = default;
  ExtentMap(const ExtentMap&) = delete;
  ExtentMap& operator=(const ExtentMap&) = delete;
  ~ExtentMap();

  // Any thread. 0 when unallocated or beyond the populated range.
  uint32_t get(uint64_t index) const {
    const Dir* d = dir_.load(std::memory_order_acquire);
    if (d == nullptr) return 0;
    uint64_t leaf = index >> kLeafBits;
    if (leaf >= d->size) return 0;
    const Leaf* l = d->leaves[leaf].load(std::memory_order_acquire);
    return l ? l->e[index & (kLeafSize - 1)].load(std::memory_order_acquire) : 0;
  }

  // Metadata thread only (callers serialize).
  void set(uint64_t index, uint32_t value);
  // Calls fn(index, value) for every nonzero entry in ascending order.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    const Dir* d = dir_.load(std::memory_order_acquire);
    if (d == nullptr) return;
    for (uint64_t li = 0; li < d->size; ++li) {
      const Leaf* l = d->leaves[li].load(std::memory_order_acquire);
      if (!l) continue;
      for (uint64_t i = 0; i < kLeafSize; ++i) {
        uint32_t v = l->e[i].load(std::memory_order_relaxed);
        if (v) fn((li << kLeafBits) | i, v);
      }
    }
  }

 private:
  struct Leaf {
    std::atomic<uint32_t> e[kLeafSize] = {};
  };
  struct Dir {
    uint64_t size = 0;
    std::unique_ptr<std::atomic<Leaf*>[]> leaves;
  };
  std::atomic<Dir*> dir_{nullptr};
  std::vector<std::unique_ptr<Dir>> dirs_;  // current and retired directories
  std::vector<std::unique_ptr<Leaf>> leaves_;
};

}  // namespace sluice::blob
