// Fallback mode (URI option fallback=/DIR): a database moves onto SluiceFS while it runs.
//
// The RocksDB directory /DIR (the same path, routed to SluiceFS) is served from SluiceFS; a
// file that SluiceFS does not have is read from the kernel directory /DIR instead. New files
// are always created in SluiceFS, so RocksDB's own flushes and compactions move the data
// over. The kernel directory is never written: deleting a file that exists there records a
// tombstone in SluiceFS, which hides it from then on.
//
// The record is one small append-only text file in the SluiceFS directory,
// "<dir>/SLUICE-FALLBACK" (hidden from RocksDB's listings), with one line per event:
//   tombstone NAME     the kernel file NAME is deleted (hidden)
//   finished           every kernel file was copied (`sluice migrate finish`): fallback
//                      is over and the URI option becomes a no-op
// Each line is synced before the call that wrote it returns; a torn last line (no '\n')
// is ignored, which only un-hides a file whose deletion was never acknowledged.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "fs/fs.h"

namespace sluice::rocksdb_plugin {

class Fallback {
 public:
  static constexpr const char* kRecordName = "SLUICE-FALLBACK";

  // kernel_dir: the kernel directory; sluice_dir: the SluiceFS path of the same RocksDB dir.
  // `fs` stays mounted while `keep_alive` lives (the plugin's Mount; `sluice migrate status`
  // passes a read-only mount it holds itself, and may only call the const-like queries).
  Fallback(fs::FileSystem* fs, std::shared_ptr<void> keep_alive, std::string kernel_dir, std::string sluice_dir);

  const std::string& kernel_dir() const { return kernel_dir_; }
  const std::string& sluice_dir() const { return sluice_dir_; }

  // True when `sluice_path` names the fallback directory itself.
  bool is_dir(const std::string& sluice_path) const { return sluice_path == sluice_dir_; }
  // Invalid_argument when `rocksdb_path` is a database's own file (CURRENT, IDENTITY,
  // MANIFEST-*, OPTIONS-*) in another directory: the database RocksDB opens is then not the
  // one fallback= names (--db and fallback= differ), and the option would silently do nothing.
  Status check_database_file(const std::string& rocksdb_path) const;
  // The kernel path a SluiceFS path falls back to: "" when it does not (not directly in the
  // directory, the record itself, tombstoned, or fallback finished).
  Result<std::string> kernel_path(const std::string& sluice_path);
  // Kernel files RocksDB may still see: not tombstoned, not the record (none once finished).
  Result<std::vector<std::string>> kernel_names();

  struct Remaining {
    std::string name;
    uint64_t size = 0;
  };
  // kernel_names() that SluiceFS does not shadow: what `finish` still has to copy.
  Result<std::vector<Remaining>> remaining();

  Status tombstone(const std::string& name);  // durable when it returns
  // Renaming a kernel file (RocksDB renames LOG to LOG.old.* at open): copies it to
  // `sluice_target`, syncs, then tombstones it. Not atomic: a crash in between leaves a
  // partial target next to the still visible original, which is harmless for RocksDB's info
  // logs, the only kernel files it renames.
  Status move_in(const std::string& name, const std::string& sluice_target);
  Status finish();                            // durable when it returns
  Result<bool> finished();
  // A record exists and does not say finished: some of the database's files may be only in
  // the kernel directory (copying the SluiceFS side alone would lose them).
  Result<bool> unfinished();

 private:
  Status load_locked();
  Status append_locked(const std::string& line);
  std::string record_path() const;

  fs::FileSystem* fs_;
  std::shared_ptr<void> keep_alive_;
  std::string kernel_dir_, sluice_dir_;
  std::mutex mu_;
  bool loaded_ = false;
  bool record_found_ = false;
  bool finished_ = false;
  std::set<std::string, std::less<>> tombstones_;
};

}  // namespace sluice::rocksdb_plugin
