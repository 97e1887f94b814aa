#include "blob/extent_map.h"

namespace sluice::blob {

ExtentMap::~ExtentMap() = default;

void ExtentMap::set(uint64_t index, uint32_t value) {
  uint64_t leaf = index >> kLeafBits;
  Dir* d = dir_.load(std::memory_order_relaxed);
  if (d == nullptr || leaf >= d->size) {
    if (value == 0) return;  // unallocated beyond the populated range already reads as 0
    auto grown = std::make_unique<Dir>();
    grown->size = std::max<uint64_t>(leaf + 1, d ? d->size * 2 : 1);
    grown->leaves.reset(new std::atomic<Leaf*>[grown->size]);
    for (uint64_t i = 0; i < grown->size; ++i)
      grown->leaves[i].store(d && i < d->size ? d->leaves[i].load(std::memory_order_relaxed) : nullptr,
                             std::memory_order_relaxed);
    d = grown.get();
    dirs_.push_back(std::move(grown));
    dir_.store(d, std::memory_order_release);
  }
  Leaf* l = d->leaves[leaf].load(std::memory_order_relaxed);
  if (l == nullptr) {
    if (value == 0) return;
    leaves_.push_back(std::make_unique<Leaf>());
    l = leaves_.back().get();
    d->leaves[leaf].store(l, std::memory_order_release);
  }
  l->e[index & (kLeafSize - 1)].store(value, std::memory_order_release);
}

}  // namespace sluice::blob
