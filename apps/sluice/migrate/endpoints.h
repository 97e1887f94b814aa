// Opening the two ends of a migration from what the user typed, with the checks that make a
// mistake a clear message: a kernel directory (must exist; a source must hold a closed
// database) and a SluiceFS database named by a plugin URI plus the RocksDB path (--db).
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "migrate/manifest.h"
#include "migrate/side.h"
#include "rocksdb/sluice_file_system.h"

namespace sluice::migrate {

// The kernel directory `dir` (made absolute) through RocksDB's default FileSystem.
Side kernel_side(const std::string& dir);

// A source directory must exist, hold a RocksDB database (CURRENT) and not be open in
// another process (RocksDB's LOCK is held with fcntl; we only test it, never take it).
Status check_kernel_source(const std::string& dir);

// The SluiceFS side: `uri` as the plugin takes it, `db` the path RocksDB opens (--db).
// invalid_argument for a malformed URI or a --db that the URI's root does not route to
// SluiceFS; allow_fallback=false refuses a URI carrying fallback=.
struct SluiceEnd {
  Side side;
  rocksdb_plugin::SluiceFileSystem* fs = nullptr;  // owned by side.fs
};
Result<SluiceEnd> open_sluice(const std::string& uri, const std::string& db, bool allow_fallback);

// Makes the destination directory and decides what is already there: a record of an
// interrupted copy from the same source (resumed), nothing (a fresh start), or anything else
// (refused unless `force`, which deletes the directory's files first).
Result<Manifest> prepare_destination(const Side& dst, const std::string& source, bool force);

// A SluiceFS database still in fallback mode (a SLUICE-FALLBACK record without "finished")
// has files only on the kernel side: copying it out would lose them.
Status check_fallback_finished(const SluiceEnd& end);

// Fails with no_space when `bytes` will not fit in dst's free space.
Status check_space(const Side& dst, uint64_t bytes);

}  // namespace sluice::migrate
