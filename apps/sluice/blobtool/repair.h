// `sluice blob repair`: fixes what can be fixed without guessing, and refuses the rest.
//
// What it fixes, all through the store's own write paths (a read-write load, which recovers,
// then a clean unload, which writes a fresh checkpoint and a super block):
// - a damaged (or foreign) super block copy: a super block write always goes to the copy not
//   in use, so the damaged copy is rewritten from the state the good one describes;
// - a journal that needs replaying, a torn journal tail, freed clusters not yet zeroed.
// - both super block copies lost: rebuilt from the newest whole checkpoint, its layout
//   recomputed from the device size and the cluster size (Store::plan_super_rebuild);
//   journal pages are not replayed, since without a super block nothing says which of them
//   are newer than that checkpoint.
// What it refuses (exit 1, nothing written): no valid super block copy and no checkpoint; a damaged active
// checkpoint (the older one would silently roll changes back); metadata that loads but is
// inconsistent; and, unless forced, a journal whose replay would drop intact batches after a
// damaged page or a newer super block copy that was relied on before it was damaged.
#pragma once

#include <functional>
#include <string>

#include "blobtool/check.h"
#include "blobtool/device.h"

namespace sluice::blobtool {

struct RepairOptions {
  bool dry_run = false;  // say what would be done, write nothing
  bool force = false;    // accept losing journal batches stranded behind damage
  uint32_t cluster_size = 0;  // rebuilding a lost super block: the store's (0: find it)
};

struct RepairOutcome {
  bool refused = false;   // nothing written: the reason is in `message`
  bool changed = false;   // something was written
  bool clean_after = false;
  std::string message;    // one line: what happened, or why not
};

// Prints its plan and progress through `print` (one line per call, no newline).
Result<RepairOutcome> run_repair(const Device& dev, const RepairOptions& opts,
                                 const std::function<void(const std::string&)>& print);

}  // namespace sluice::blobtool
