// `sluice blob check`: fsck of a blobstore without writing to it. Judges the raw metadata
// (super block copies, the active checkpoint, the journal) and then the state a read-only
// load rebuilds (Store::check(): every cluster owned once, counts, parents, sizes).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blobtool/device.h"
#include "blobtool/text.h"

namespace sluice::blobtool {

enum class Severity { ok, info, damage };

struct Finding {
  Severity severity = Severity::ok;
  std::string area;  // super, checkpoint, journal, load, consistency, recovery, device
  std::string message;
};

struct CheckReport {
  std::string spec;
  std::vector<Finding> findings;
  MetadataScan scan;

  bool loaded = false;          // a read-only load succeeded
  std::string load_error;
  bool super_damaged[2] = {false, false};
  bool super_ambiguous = false;
  bool checkpoint_survives = false;  // no super block copy is valid, but a checkpoint is  // the copy in use may be older than a damaged newer one
  bool checkpoint_damaged = false;
  bool journal_damaged = false;  // replay would stop before intact, acknowledged batches
  std::vector<std::string> inconsistencies;  // Store::check()
  // What recovery would do.
  uint64_t replay_batches = 0, replay_pages = 0;
  bool torn_tail = false;
  bool skip_ahead = false;  // recovery must move the journal past pages it did not replay
  uint64_t dirty_clusters = 0;
  // The state, when loaded.
  uint64_t blobs = 0, total_clusters = 0, free_clusters = 0;

  size_t problems() const;
  // What a read-write load would write (recovery.cc): a replay, zeroing, or moving the journal
  // head past pages it did not replay. A torn page alone at the head needs nothing: the next
  // commit overwrites it.
  bool needs_recovery() const { return replay_batches > 0 || skip_ahead || dirty_clusters > 0; }
};

// Fails (with one line saying why) when the device cannot be read, is not a blobstore, or
// was written by a newer format version; every kind of damage is a finding instead.
Result<CheckReport> run_check(const Device& dev);

std::string check_text(const CheckReport& r);
nlohmann::json check_json(const CheckReport& r);

}  // namespace sluice::blobtool
