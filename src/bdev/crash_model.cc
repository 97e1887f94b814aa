#include "bdev/crash_model.h"

#include <bit>

namespace sluice::bdev {

// Counts a boundary. False if the device is off, or goes off now (cut_power_at).
bool CrashModel::admit_boundary() {
  if (off) return false;
  if (cut_at != 0 && boundaries + 1 >= cut_at) {
    cut();
    return false;
  }
  ++boundaries;
  return true;
}

// Removes [s, e) from the extent map.
void CrashModel::carve(uint64_t s, uint64_t e) {
  auto it = extents.lower_bound(s);
  if (it != extents.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > s) {
      CrashExtent old = prev->second;
      prev->second.end = s;
      if (old.end > e) {  // [s, e) lay inside one extent
        extents.emplace(e, old);
        return;
      }
    }
  }
  while (it != extents.end() && it->first < e) {
    if (it->second.end <= e) {
      it = extents.erase(it);
      continue;
    }
    CrashExtent tail = it->second;
    extents.erase(it);
    extents.emplace(e, tail);
    break;
  }
}

void CrashModel::insert(std::unique_ptr<CrashEntry> entry) {
  entry->seq = next_seq++;
  carve(entry->offset_blocks, entry->end());
  extents.emplace(entry->offset_blocks, CrashExtent{entry->end(), entry.get()});
  if (entry->data) pending_bytes += entry->num_blocks * block_size;
  entries.push_back(std::move(entry));
}

// Drops the entries below `target` from the overlay: the base holds them durably now.
void CrashModel::retire_durable(uint64_t target) {
  while (!entries.empty() && entries.front()->seq < target) {
    CrashEntry* e = entries.front().get();
    for (auto it = extents.lower_bound(e->offset_blocks); it != extents.end() && it->first < e->end();) {
      if (it->second.entry == e) {
        it = extents.erase(it);
      } else {
        ++it;
      }
    }
    if (e->data) pending_bytes -= e->num_blocks * block_size;
    ++flushed_writes;
    entries.pop_front();
  }
}

// The power fails: decide every pending write's fate and turn the device off.
void CrashModel::cut() {
  if (off) return;
  off = true;
  off_flag.store(true, std::memory_order_release);
  std::mt19937_64 rng(seed);
  for (auto& owned : entries) {
    CrashEntry* e = owned.get();
    const uint64_t n = e->num_blocks;
    if (e->seq < destaged_upto) {
      ++kept;
      ++destaged;
      plan.push_back({e, 0, n});
      continue;
    }
    uint32_t allowed = outcomes;
    if (n == 1) {
      allowed &= ~uint32_t{kCrashTear};
      if (allowed == 0) allowed = kCrashLose;
    }
    uint64_t pick = rng() % static_cast<uint64_t>(std::popcount(allowed));
    uint32_t outcome = 0;
    for (uint32_t bit = 1; bit <= kCrashTear; bit <<= 1) {
      if ((allowed & bit) != 0 && pick-- == 0) {
        outcome = bit;
        break;
      }
    }
    if (outcome == kCrashKeep) {
      ++kept;
      plan.push_back({e, 0, n});
    } else if (outcome == kCrashLose) {
      ++lost;
    } else {
      ++torn;
      tear(e, rng);
    }
  }
  for (auto& owned : entries) retired.push_back(std::move(owned));
  entries.clear();
  extents.clear();
  pending_bytes = 0;
}

// Keeps a random proper non-empty subset of e's blocks (e has at least two).
void CrashModel::tear(CrashEntry* e, std::mt19937_64& rng) {
  const uint64_t n = e->num_blocks;
  std::vector<bool> survive(n);
  uint64_t kept_blocks = 0;
  do {
    kept_blocks = 0;
    uint64_t bits = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if (i % 64 == 0) bits = rng();
      survive[i] = (bits >> (i % 64)) & 1;
      kept_blocks += survive[i];
    }
  } while (kept_blocks == 0 || kept_blocks == n);
  for (uint64_t i = 0; i < n;) {
    if (!survive[i]) {
      ++i;
      continue;
    }
    uint64_t j = i;
    while (j < n && survive[j]) ++j;
    plan.push_back({e, i, j - i});
    i = j;
  }
}

}  // namespace sluice::bdev
