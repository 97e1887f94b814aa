// One end of a migration: a directory in a rocksdb::FileSystem, either the kernel's (POSIX)
// or SluiceFS through the plugin. The copy engine only sees this, so import, export and
// fallback finish are one engine run in different directions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/file_system.h>

#include "base/status.h"

namespace sluice::migrate {

struct Side {
  std::shared_ptr<::rocksdb::FileSystem> fs;
  std::string dir;    // the directory as `fs` names it (for SluiceFS: the RocksDB path)
  std::string label;  // for messages: "/var/lib/db" or "sluice://uring:/img /db"

  std::string path(const std::string& name) const { return dir == "/" ? "/" + name : dir + "/" + name; }
};

struct FileEntry {
  std::string name;
  uint64_t size = 0;
};

// Names the migration keeps for itself in a database directory (never copied).
inline constexpr const char* kManifestName = "SLUICE-MIGRATE";   // progress of import/export
inline constexpr const char* kPartialSuffix = ".migrating";       // a file being copied

bool is_internal_name(const std::string& name);

// The regular files of side.dir with their sizes, sorted by name except that CURRENT comes
// last: a destination is never an openable database until everything else is in place.
// Internal names are left out; subdirectories are returned in *subdirs (not copied).
Result<std::vector<FileEntry>> list_files(const Side& side, std::vector<std::string>* subdirs);

// Reads a small file (a record, at most 64 MiB) of `side` whole.
Result<std::string> read_small_file(const Side& side, const std::string& path);

// Converts a RocksDB status into a Sluice one, prefixing `what` (usually a path).
Status from_rocksdb(const ::rocksdb::Status& s, const std::string& what);

}  // namespace sluice::migrate
