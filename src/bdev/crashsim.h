// The crashsim bdev: a device with a volatile write cache, and a power switch (docs/design.md,
// "Durability and the crash model"; docs/crashsim.md).
//
//   bdev::create("malloc:64M", "disk");
//   auto cs = bdev::CrashSim::stack("disk", "cs");      // registers "cs" on top of "disk"
//   cs->set_seed(seed);
//   ... run a workload on "cs" ...
//   cs->cut_power();                                     // or cut_power_at(n) beforehand
//   ... put channels, close handles of "cs", bdev::unregister("cs") ...
//   ... open "disk": it holds the post-crash image ...
//
// The model
// - Write cache. Every write, write_zeroes and unmap is held in a volatile overlay (a copy
//   of its data) and completes at once. Reads see the overlay on top of the base, per
//   block: the latest write to a block wins. Unmap is modelled as writing zeroes (when the
//   base does not zero unmapped blocks their contents are undefined, and zeroes are one
//   legal choice).
// - FLUSH. A flush makes durable every write that completed before the flush was submitted
//   (on any channel): it writes them to the base in issue order through the base channel of
//   the flushing thread, then flushes the base (when the base supports flush), and only then
//   completes. A write that completed after the flush was submitted is not covered. Flushes
//   from several threads are applied one at a time. The base never sees a write before a
//   flush that covers it has been submitted.
// - Power cut. At the cut the device turns off: every request submitted afterwards, and
//   every request still in flight when it completes, fails with Errc::aborted. Each write
//   still in the overlay independently survives whole ("kept"), vanishes ("lost") or tears
//   ("torn": a random, proper, non-empty subset of its blocks survives, not just a prefix),
//   drawn from std::mt19937_64 seeded with set_seed(). The tear unit is the device block
//   (the base's logical sector: 512 bytes, or 4096 on a bs=4096 device). Writes a flush in
//   progress had already sent to the base are kept whole (the cache had destaged them).
//   The surviving parts are written to the base in issue order.
// - The image. The post-crash image is written to the base when the crashsim device is
//   destroyed (after it was unregistered and its last handle closed), just before its
//   exclusive claim on the base is released, so whoever opens the base next sees exactly
//   that image. A crashsim device destroyed without a power cut is a clean shutdown: the
//   whole overlay is written to the base and flushed.
//
// I/O boundaries (for cut_power_at): every write, write_zeroes, unmap and flush request
// that reaches the device while it is on is one boundary, numbered 1, 2, 3, ... in the order
// the device receives them (across all channels). Reads and resets do not count. A write
// larger than the maximum transfer size reaches the device as several requests (the generic
// layer splits it), so it counts as several boundaries, and each piece is a separate write
// of the model. cut_power_at(n) cuts the power just before boundary n takes effect:
// boundaries 1..n-1 are processed normally, request n fails with Errc::aborted and is not
// applied, and boundaries() then reads n-1. To cut at every boundary of a workload, run it
// once without a cut, read its total B = boundaries(), then re-run it on a fresh device with
// cut_power_at(n) for n = 1..B (and once more cutting with cut_power() after the last
// request).
//
// Locking: crashsim is the one bdev with a lock on its data path. Channels on several
// threads share one overlay, and a flush must see every write completed before it on any
// thread, so the overlay, the boundary counter and the power state sit behind one mutex.
// That is fine for a test device; nothing performance-sensitive stacks on it.
//
// Memory: the overlay holds a copy of every unflushed write (write_zeroes and unmap hold
// none) until a flush covering it completes; pending_bytes() shows how much.
//
// Made from a spec, "crashsim:SPEC" builds its base from the nested spec and registers it
// as "<name>_base"; that base is removed together with the crashsim device, so its image
// cannot be inspected. Crash tests that read the image stack on a named base with stack().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bdev/bdev.h"

namespace sluice::bdev {

// Outcomes a write in the overlay may have at a power cut, as a mask.
enum CrashOutcome : uint32_t {
  kCrashKeep = 1,  // survives whole
  kCrashLose = 2,  // vanishes
  kCrashTear = 4,  // a random proper non-empty subset of its blocks survives
  kCrashAny = kCrashKeep | kCrashLose | kCrashTear,
};

struct CrashCounts {
  uint64_t boundaries = 0;      // I/O boundaries processed while the power was on
  uint64_t pending_writes = 0;  // writes in the overlay (0 after the cut)
  uint64_t pending_bytes = 0;   // data bytes the overlay holds
  uint64_t flushes = 0;         // flushes completed successfully
  uint64_t flushed_writes = 0;  // writes made durable by flushes
  bool powered_off = false;
  // After a cut: what happened to the writes that were in the overlay.
  uint64_t kept = 0;            // survived whole (including `destaged`)
  uint64_t lost = 0;
  uint64_t torn = 0;
  uint64_t destaged = 0;        // kept because a flush in progress had sent them to the base
  bool image_written = false;   // the post-crash image is in the base
};

struct CrashState;  // internal, shared by the device and its handles

// A control handle; the calls are thread-safe. Copies share the device's state; a handle
// stays valid (and its counts readable) after the device is gone.
class CrashSim {
 public:
  // Stacks a crashsim bdev named `name` on the registered bdev `base_name` (claimed
  // exclusively) and registers it.
  static Result<CrashSim> stack(std::string_view base_name, std::string_view name);
  // The handle of a registered crashsim bdev (for instance one made from a spec).
  static Result<CrashSim> find(std::string_view name);

  const std::string& name() const;
  const std::string& base_name() const;

  // Seeds the generator that decides each write's fate at the cut (default 0).
  void set_seed(uint64_t seed);
  // Restricts the outcomes drawn at the cut to a non-empty CrashOutcome mask (default
  // kCrashAny; each allowed outcome is equally likely). A write of one block cannot tear:
  // it is kept or lost (lost if kCrashTear is the only outcome allowed).
  Status set_outcomes(uint32_t mask);

  // Cuts the power now. Idempotent.
  void cut_power();
  // Cuts the power just before boundary n (1-based, counted since the device was made);
  // 0 disarms. Fails if boundary n has already passed.
  Status cut_power_at(uint64_t n);

  bool powered_off() const;
  uint64_t boundaries() const;
  uint64_t pending_writes() const;
  uint64_t pending_bytes() const;
  CrashCounts counts() const;

 private:
  explicit CrashSim(std::shared_ptr<CrashState> state) : state_(std::move(state)) {}
  std::shared_ptr<CrashState> state_;
};

}  // namespace sluice::bdev
