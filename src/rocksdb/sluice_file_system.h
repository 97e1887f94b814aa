// rocksdb::FileSystem over a mounted SluiceFS. Paths under the URI's root go to SluiceFS
// (root is its "/"); others, and WAL files when wal_dir is set, go to the default POSIX
// FileSystem. With fallback=/DIR, files of /DIR missing from SluiceFS are read from the
// kernel directory /DIR (fallback.h).
#pragma once

#include <memory>
#include <string>

#include <rocksdb/file_system.h>

#include "rocksdb/fallback.h"
#include "rocksdb/sluice_mounts.h"
#include "rocksdb/sluice_uri.h"

namespace sluice::rocksdb_plugin {

// Where a RocksDB path lives.
struct Route {
  bool sluice = false;  // else the POSIX FileSystem
  std::string path;     // in that file system
};

class SluiceFileSystem final : public ::rocksdb::FileSystem {
 public:
  SluiceFileSystem(PluginUri uri, std::shared_ptr<Mount> mount);

  static const char* kClassName() { return "SluiceFileSystem"; }
  const char* Name() const override { return kClassName(); }

  Route route(const std::string& path) const;
  // The POSIX directory holding WAL files of SluiceFS directory `sluice_dir` ("" if none).
  std::string wal_mirror(const std::string& sluice_dir) const;
  // The fallback of URI option fallback= (null without one, or when its directory is not
  // routed to SluiceFS).
  Fallback* fallback() const { return fallback_.get(); }
  // Whether the SluiceFS directory behind RocksDB path `dir` is a database still in fallback
  // mode (its record is not finished), whatever this URI says about fallback=.
  Result<bool> fallback_unfinished(const std::string& dir) const;

  using IOOptions = ::rocksdb::IOOptions;
  using IOStatus = ::rocksdb::IOStatus;
  using FileOptions = ::rocksdb::FileOptions;
  using IODebugContext = ::rocksdb::IODebugContext;

  IOStatus NewSequentialFile(const std::string& fname, const FileOptions& opts,
                             std::unique_ptr<::rocksdb::FSSequentialFile>* result, IODebugContext* dbg) override;
  IOStatus NewRandomAccessFile(const std::string& fname, const FileOptions& opts,
                               std::unique_ptr<::rocksdb::FSRandomAccessFile>* result, IODebugContext* dbg) override;
  IOStatus NewWritableFile(const std::string& fname, const FileOptions& opts,
                           std::unique_ptr<::rocksdb::FSWritableFile>* result, IODebugContext* dbg) override;
  IOStatus ReopenWritableFile(const std::string& fname, const FileOptions& opts,
                              std::unique_ptr<::rocksdb::FSWritableFile>* result, IODebugContext* dbg) override;
  IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname, const FileOptions& opts,
                             std::unique_ptr<::rocksdb::FSWritableFile>* result, IODebugContext* dbg) override;
  IOStatus NewRandomRWFile(const std::string& fname, const FileOptions& opts,
                           std::unique_ptr<::rocksdb::FSRandomRWFile>* result, IODebugContext* dbg) override;
  IOStatus NewDirectory(const std::string& name, const IOOptions& io_opts,
                        std::unique_ptr<::rocksdb::FSDirectory>* result, IODebugContext* dbg) override;
  IOStatus FileExists(const std::string& fname, const IOOptions& options, IODebugContext* dbg) override;
  IOStatus GetChildren(const std::string& dir, const IOOptions& options, std::vector<std::string>* result,
                       IODebugContext* dbg) override;
  IOStatus GetChildrenFileAttributes(const std::string& dir, const IOOptions& options,
                                     std::vector<::rocksdb::FileAttributes>* result, IODebugContext* dbg) override;
  IOStatus DeleteFile(const std::string& fname, const IOOptions& options, IODebugContext* dbg) override;
  IOStatus Truncate(const std::string& fname, size_t size, const IOOptions& options, IODebugContext* dbg) override;
  IOStatus CreateDir(const std::string& dirname, const IOOptions& options, IODebugContext* dbg) override;
  IOStatus CreateDirIfMissing(const std::string& dirname, const IOOptions& options, IODebugContext* dbg) override;
  IOStatus DeleteDir(const std::string& dirname, const IOOptions& options, IODebugContext* dbg) override;
  IOStatus GetFileSize(const std::string& fname, const IOOptions& options, uint64_t* file_size,
                       IODebugContext* dbg) override;
  IOStatus GetFileModificationTime(const std::string& fname, const IOOptions& options, uint64_t* file_mtime,
                                   IODebugContext* dbg) override;
  IOStatus RenameFile(const std::string& src, const std::string& target, const IOOptions& options,
                      IODebugContext* dbg) override;
  IOStatus LinkFile(const std::string& src, const std::string& target, const IOOptions& options,
                    IODebugContext* dbg) override;
  IOStatus LockFile(const std::string& fname, const IOOptions& options, ::rocksdb::FileLock** lock,
                    IODebugContext* dbg) override;
  IOStatus UnlockFile(::rocksdb::FileLock* lock, const IOOptions& options, IODebugContext* dbg) override;
  IOStatus GetTestDirectory(const IOOptions& options, std::string* path, IODebugContext* dbg) override;
  IOStatus NewLogger(const std::string& fname, const IOOptions& io_opts, std::shared_ptr<::rocksdb::Logger>* result,
                     IODebugContext* dbg) override;
  IOStatus GetAbsolutePath(const std::string& db_path, const IOOptions& options, std::string* output_path,
                           IODebugContext* dbg) override;
  IOStatus GetFreeSpace(const std::string& path, const IOOptions& options, uint64_t* diskfree,
                        IODebugContext* dbg) override;
  IOStatus IsDirectory(const std::string& path, const IOOptions& options, bool* is_dir, IODebugContext* dbg) override;
  IOStatus Poll(std::vector<void*>& io_handles, size_t min_completions) override;
  IOStatus AbortIO(std::vector<void*>& io_handles) override;

 private:
  IOStatus open_writable(const Route& r, const FileOptions& opts, bool truncate,
                         std::unique_ptr<::rocksdb::FSWritableFile>* result);
  bool is_dir(const std::string& sluice_path);
  // After SluiceFS answered `st` for r: OK with *kernel set when the file falls back to the
  // kernel directory, else the status to return (st itself for a plain miss).
  IOStatus fall_back(const Route& r, const Status& st, std::string* kernel);
  // True when a kernel file still stands in for r (in SluiceFS it is missing).
  bool only_in_kernel(const Route& r);
  IOStatus merge_children(Result<std::vector<std::string>> names, std::vector<std::string>* result);

  PluginUri uri_;
  std::shared_ptr<Mount> mount_;
  std::shared_ptr<::rocksdb::FileSystem> posix_;
  std::unique_ptr<Fallback> fallback_;
};

// NewLogger's logger, writing RocksDB's LOG format to `file`.
::rocksdb::IOStatus new_sluice_logger(std::unique_ptr<::rocksdb::FSWritableFile> file,
                                      std::shared_ptr<::rocksdb::Logger>* result);

}  // namespace sluice::rocksdb_plugin
