// SluiceFileSystem: opening files and directories.
#include <filesystem>

#include <fmt/format.h>

#include "rocksdb/sluice_file_system.h"
#include "rocksdb/sluice_files.h"
#include "rocksdb/sluice_io_status.h"

namespace sluice::rocksdb_plugin {
namespace {

using ::rocksdb::IOStatus;

// FSDirectory::Fsync makes the directory's namespace changes durable (and, with wal_dir,
// fsyncs the POSIX directory holding its WAL files).
class SluiceDirectory final : public ::rocksdb::FSDirectory {
 public:
  SluiceDirectory(std::shared_ptr<Mount> mount, std::string path, std::unique_ptr<::rocksdb::FSDirectory> wal_dir)
      : mount_(std::move(mount)), path_(std::move(path)), wal_dir_(std::move(wal_dir)) {}

  IOStatus Fsync(const ::rocksdb::IOOptions& options, ::rocksdb::IODebugContext* dbg) override {
    if (wal_dir_) {
      IOStatus s = wal_dir_->Fsync(options, dbg);
      if (!s.ok()) return s;
    }
    return to_io_status(mount_->fs().sync_dir(path_));
  }
  IOStatus Close(const ::rocksdb::IOOptions& options, ::rocksdb::IODebugContext* dbg) override {
    return wal_dir_ ? wal_dir_->Close(options, dbg) : IOStatus::OK();
  }

 private:
  std::shared_ptr<Mount> mount_;
  std::string path_;
  std::unique_ptr<::rocksdb::FSDirectory> wal_dir_;
};

}  // namespace

IOStatus SluiceFileSystem::NewSequentialFile(const std::string& fname, const FileOptions& opts,
                                             std::unique_ptr<::rocksdb::FSSequentialFile>* result,
                                             IODebugContext* dbg) {
  // Every open of an existing database reads its CURRENT this way.
  if (fallback_) {
    if (Status st = fallback_->check_database_file(fname); !st.ok()) return to_io_status(st);
  }
  Route r = route(fname);
  if (!r.sluice) return posix_->NewSequentialFile(r.path, opts, result, dbg);
  auto f = mount_->fs().open(r.path, {});
  if (!f.ok()) {
    std::string kernel;
    IOStatus s = fall_back(r, f.status(), &kernel);
    return kernel.empty() ? s : posix_->NewSequentialFile(kernel, opts, result, dbg);
  }
  *result = make_sequential_file({mount_, r.path, opts.use_direct_reads}, std::move(*f));
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::NewRandomAccessFile(const std::string& fname, const FileOptions& opts,
                                               std::unique_ptr<::rocksdb::FSRandomAccessFile>* result,
                                               IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) return posix_->NewRandomAccessFile(r.path, opts, result, dbg);
  auto f = mount_->fs().open(r.path, {});
  if (!f.ok()) {
    std::string kernel;
    IOStatus s = fall_back(r, f.status(), &kernel);
    return kernel.empty() ? s : posix_->NewRandomAccessFile(kernel, opts, result, dbg);
  }
  *result = make_random_access_file({mount_, r.path, opts.use_direct_reads}, std::move(*f));
  return IOStatus::OK();
}

// Table and blob files are read back as soon as they are written (by Gets, iterators and the
// next compaction): their bytes stay in the read cache, as written pages stay in a page
// cache. A WAL or MANIFEST is read only at recovery and would only push useful blocks out.
static bool read_back_soon(std::string_view path) { return path.ends_with(".sst") || path.ends_with(".blob"); }

IOStatus SluiceFileSystem::open_writable(const Route& r, const FileOptions& opts, bool truncate,
                                         std::unique_ptr<::rocksdb::FSWritableFile>* result) {
  auto f = mount_->fs().open(r.path, {.write = true,
                                      .create = true,
                                      .truncate = truncate,
                                      .cache_writes = !opts.use_direct_writes && read_back_soon(r.path)});
  if (!f.ok()) return to_io_status(f.status());
  *result = make_writable_file({mount_, r.path, opts.use_direct_writes}, std::move(*f), opts);
  return IOStatus::OK();
}

// A WAL sent to wal_dir lands in a mirror of its SluiceFS directory, made on first use.
static void make_parent(const std::string& posix_path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(posix_path).parent_path(), ec);
}

IOStatus SluiceFileSystem::NewWritableFile(const std::string& fname, const FileOptions& opts,
                                           std::unique_ptr<::rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  // Every new database writes its first MANIFEST this way.
  if (fallback_) {
    if (Status st = fallback_->check_database_file(fname); !st.ok()) return to_io_status(st);
  }
  Route r = route(fname);
  if (!r.sluice) {
    if (!uri_.wal_dir.empty()) make_parent(r.path);
    return posix_->NewWritableFile(r.path, opts, result, dbg);
  }
  return open_writable(r, opts, true, result);
}

IOStatus SluiceFileSystem::ReopenWritableFile(const std::string& fname, const FileOptions& opts,
                                              std::unique_ptr<::rocksdb::FSWritableFile>* result,
                                              IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) {
    if (!uri_.wal_dir.empty()) make_parent(r.path);
    return posix_->ReopenWritableFile(r.path, opts, result, dbg);
  }
  if (only_in_kernel(r))  // appending would need a copy first; RocksDB never reopens old files
    return IOStatus::NotSupported(fmt::format("reopen {}: the file is still in the fallback directory", fname));
  return open_writable(r, opts, false, result);
}

// Renames the old file into place and starts it empty (its space is reused by SluiceFS).
IOStatus SluiceFileSystem::ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                             const FileOptions& opts,
                                             std::unique_ptr<::rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  Route r = route(fname), old = route(old_fname);
  if (!r.sluice && !old.sluice) return posix_->ReuseWritableFile(r.path, old.path, opts, result, dbg);
  IOStatus s = RenameFile(old_fname, fname, {}, dbg);
  if (!s.ok()) return s;
  return open_writable(r, opts, true, result);
}

IOStatus SluiceFileSystem::NewRandomRWFile(const std::string& fname, const FileOptions& opts,
                                           std::unique_ptr<::rocksdb::FSRandomRWFile>* result, IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) return posix_->NewRandomRWFile(r.path, opts, result, dbg);
  if (only_in_kernel(r))  // writing in place would need a copy first
    return IOStatus::NotSupported(fmt::format("{}: the file is still in the fallback directory", fname));
  auto f = mount_->fs().open(r.path, {.write = true, .create = true});
  if (!f.ok()) return to_io_status(f.status());
  *result = make_random_rw_file({mount_, r.path, opts.use_direct_reads}, std::move(*f));
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::NewDirectory(const std::string& name, const IOOptions& io_opts,
                                        std::unique_ptr<::rocksdb::FSDirectory>* result, IODebugContext* dbg) {
  Route r = route(name);
  if (!r.sluice) return posix_->NewDirectory(r.path, io_opts, result, dbg);
  auto st = mount_->fs().stat(r.path);
  if (!st.ok()) return to_io_status(st.status());
  if (!st->directory) return IOStatus::IOError(fmt::format("{} is not a directory", name));
  std::unique_ptr<::rocksdb::FSDirectory> wal_dir;
  if (!uri_.wal_dir.empty()) (void)posix_->NewDirectory(wal_mirror(r.path), io_opts, &wal_dir, dbg);
  *result = std::make_unique<SluiceDirectory>(mount_, r.path, std::move(wal_dir));
  return IOStatus::OK();
}

}  // namespace sluice::rocksdb_plugin
