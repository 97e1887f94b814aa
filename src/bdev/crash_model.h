// The power-cut model of the crashsim bdev, without any I/O: a volatile write cache (the
// overlay of writes not yet made durable by a FLUSH), the power switch and the I/O boundary
// counter, and the fate of each cached write at a cut (kept, lost or torn), drawn from a
// seeded generator. crashsim.cc drives it from its queues under its mutex and applies the
// resulting plan to the base device; tests/unit/bdev/crash_model_test.cc checks it alone.
// The model itself is described in crashsim.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "bdev/bdev.h"
#include "bdev/crashsim.h"

namespace sluice::bdev {

struct CrashBufferFree {
  void operator()(char* p) const { std::free(p); }
};
using CrashBuffer = std::unique_ptr<char, CrashBufferFree>;

// One write held in the overlay. Immutable once inserted.
struct CrashEntry {
  uint64_t seq = 0;
  IoType type = IoType::write;  // write, write_zeroes or unmap
  uint64_t offset_blocks = 0;
  uint64_t num_blocks = 0;
  CrashBuffer data;  // the written bytes; null for write_zeroes and unmap

  uint64_t end() const { return offset_blocks + num_blocks; }
};

struct CrashExtent {
  uint64_t end = 0;  // exclusive, in blocks
  CrashEntry* entry = nullptr;
};

// A part of a surviving write, to apply to the base after the cut.
struct CrashPlanItem {
  CrashEntry* entry = nullptr;
  uint64_t first = 0;  // blocks into the entry
  uint64_t count = 0;
};

// Not thread-safe: the crashsim device calls it with its mutex held.
struct CrashModel {
  uint32_t block_size = 512;
  // ---- the overlay ----
  std::deque<std::unique_ptr<CrashEntry>> entries;  // issue order; seqs are consecutive
  std::map<uint64_t, CrashExtent> extents;          // start block -> newest entry there
  uint64_t next_seq = 0;
  uint64_t pending_bytes = 0;
  uint64_t destaged_upto = 0;  // every entry below this seq was sent to the base by a flush
  uint64_t flushed_writes = 0;
  // ---- power ----
  bool off = false;
  std::atomic<bool> off_flag{false};  // mirrors `off` for lock-free checks by completions
  uint64_t boundaries = 0;
  uint64_t cut_at = 0;
  uint64_t seed = 0;
  uint32_t outcomes = kCrashAny;
  // ---- after the cut ----
  std::vector<std::unique_ptr<CrashEntry>> retired;  // the overlay at the cut
  std::vector<CrashPlanItem> plan;                   // what survives, in issue order
  uint64_t kept = 0, lost = 0, torn = 0, destaged = 0;

  // The seq below which every write is durable.
  uint64_t durable_frontier() const { return entries.empty() ? next_seq : entries.front()->seq; }
  // Counts a boundary. False if the device is off, or goes off now (cut_at).
  bool admit_boundary();
  // Adds a write to the overlay: it hides what it overlaps.
  void insert(std::unique_ptr<CrashEntry> entry);
  // Drops the entries below `target` from the overlay: the base holds them durably now.
  void retire_durable(uint64_t target);
  // The power fails: decides every pending write's fate (into `plan`) and turns off.
  void cut();

 private:
  void carve(uint64_t s, uint64_t e);                 // removes [s, e) from the extent map
  void tear(CrashEntry* e, std::mt19937_64& rng);     // a proper non-empty subset survives
};

}  // namespace sluice::bdev
