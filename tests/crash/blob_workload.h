// A seeded workload of blobstore metadata operations for the crash and error-injection
// suites, recording the observable state after every operation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blob/blob.h"

namespace sluice::blob {

// A small store that wraps its 16-page journal and checkpoints often.
InitOptions small_store();

// Everything a user can observe of the metadata, in one comparable string.
std::string canonical(Blobstore& bs);

// A failure of the device (power cut, injected error), as opposed to a refusal.
inline bool is_device_failure(const Status& st) { return st.code() == Errc::aborted || st.code() == Errc::io_error; }

struct Run {
  std::vector<std::string> states;  // states[0]: before any op
  size_t last_synced = 0;           // index into states of the last acknowledged sync
  bool stopped_by_failure = false;
  std::string unexpected;           // an error that is neither a refusal nor a device failure
};

// Runs `ops` operations chosen by `workload_seed` (creates, resizes, attributes, deletes,
// snapshots, clones, inflate, decouple, syncs), then a final sync. With
// stop_on_device_failure it returns at the first device failure; otherwise it goes on.
Run run_workload(Blobstore& bs, uint64_t workload_seed, int ops, bool stop_on_device_failure = true);

}  // namespace sluice::blob
