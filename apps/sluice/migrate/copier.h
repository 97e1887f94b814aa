// The copy engine shared by `sluice migrate import`, `export` and `finish`: copies files
// from one Side to another and verifies each before it counts.
//
// Each file is written under NAME.migrating, synced, read back and compared with the
// source's crc32c (SST files also pass RocksDB's block checksum verification through the
// destination's Env), then renamed into place and the directory synced; only then is it
// added to the manifest (if any). So a file under its real name is always complete, a
// partial one is simply copied again, and an interrupted run resumes by skipping what the
// manifest lists. The source is only ever opened for reading.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "migrate/manifest.h"
#include "migrate/side.h"

namespace sluice::migrate {

struct CopyOptions {
  std::string verb = "copy";     // "import", "export", "finish": for progress and messages
  bool progress = false;         // draw the progress line on stderr
  Manifest* manifest = nullptr;  // skip and record verified files; null: copy everything
  // A test hook (SLUICE_MIGRATE_FAIL_AFTER=N): after N files, copy half of the next one
  // and fail, as an interrupted run would; with "N:kill", die there by SIGKILL instead (no
  // cleanup, no unmount: the next run meets a SluiceFS that must recover). Negative: off.
  int64_t fail_after = -1;
  bool fail_by_kill = false;
};

struct CopyStats {
  uint64_t files = 0, bytes = 0;      // copied and verified by this run
  uint64_t skipped = 0, skipped_bytes = 0;  // already verified by an earlier run
  double seconds = 0;
};

// Copies `files` (names in src.dir) into dst.dir. Stops at the first failure; its message
// names the file.
Result<CopyStats> copy_files(const Side& src, const Side& dst, const std::vector<FileEntry>& files,
                             const CopyOptions& opts);

// The one-line summary printed at the end of every run: "WHAT: 12 file(s), ... copied".
std::string summary(const std::string& what, const CopyStats& stats);

// Sets the test hook's fields from SLUICE_MIGRATE_FAIL_AFTER ("N" or "N:kill").
void fail_hook_from_env(CopyOptions& opts);

}  // namespace sluice::migrate
