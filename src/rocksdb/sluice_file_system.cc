// SluiceFileSystem: routing, and the namespace operations of rocksdb::FileSystem.
// File opening is in open_files.cc.
#include "rocksdb/sluice_file_system.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "rocksdb/sluice_files.h"
#include "rocksdb/sluice_io_status.h"

namespace sluice::rocksdb_plugin {
namespace {

using ::rocksdb::IOStatus;

// A path that is missing, or runs through or names a file where a directory is needed
// (POSIX's ENOENT and ENOTDIR), is NotFound for FileExists and GetChildren, as POSIX's
// FileSystem answers them; other errors pass through.
IOStatus missing_is_not_found(const Status& st) {
  if (st.code() == Errc::not_found || st.code() == Errc::not_a_directory) return IOStatus::NotFound(st.message());
  return to_io_status(st);
}

class SluiceLock final : public ::rocksdb::FileLock {
 public:
  SluiceLock(std::shared_ptr<Mount> mount, std::unique_ptr<fs::FileLock> lock)
      : mount_(std::move(mount)), lock_(std::move(lock)) {}
  ~SluiceLock() override { lock_.reset(); }  // before the mount it belongs to

 private:
  std::shared_ptr<Mount> mount_;
  std::unique_ptr<fs::FileLock> lock_;
};

}  // namespace

SluiceFileSystem::SluiceFileSystem(PluginUri uri, std::shared_ptr<Mount> mount)
    : uri_(std::move(uri)), mount_(std::move(mount)), posix_(::rocksdb::FileSystem::Default()) {
  if (!uri_.fallback.empty()) {
    Route r = route(uri_.fallback);
    if (r.sluice) fallback_ = std::make_unique<Fallback>(&mount_->fs(), mount_, uri_.fallback, r.path);
  }
}

Route SluiceFileSystem::route(const std::string& path) const {
  std::string rel = path_under_root(uri_.root, path);
  if (rel.empty()) return Route{false, path};
  if (!uri_.wal_dir.empty() && rel.ends_with(".log")) return Route{false, wal_mirror(rel)};
  return Route{true, rel};
}

Result<bool> SluiceFileSystem::fallback_unfinished(const std::string& dir) const {
  const Route r = route(dir);
  if (!r.sluice) return false;
  Fallback record(&mount_->fs(), mount_, "", r.path);  // only its record is read
  return record.unfinished();
}

std::string SluiceFileSystem::wal_mirror(const std::string& sluice_path) const {
  if (uri_.wal_dir.empty()) return "";
  return uri_.wal_dir == "/" ? sluice_path : uri_.wal_dir + (sluice_path == "/" ? "" : sluice_path);
}

IOStatus SluiceFileSystem::fall_back(const Route& r, const Status& st, std::string* kernel) {
  kernel->clear();
  if (!fallback_ || !r.sluice || st.code() != Errc::not_found) return to_io_status(st);
  auto k = fallback_->kernel_path(r.path);
  if (!k.ok()) return to_io_status(k.status());
  if (k->empty()) return to_io_status(st);
  *kernel = std::move(*k);
  return IOStatus::OK();
}

bool SluiceFileSystem::only_in_kernel(const Route& r) {
  if (!fallback_ || !r.sluice) return false;
  auto st = mount_->fs().stat(r.path);
  if (st.ok()) return false;
  std::string k;
  return fall_back(r, st.status(), &k).ok() && !k.empty() && posix_->FileExists(k, {}, nullptr).ok();
}

bool SluiceFileSystem::is_dir(const std::string& sluice_path) {
  auto st = mount_->fs().stat(sluice_path);
  return st.ok() && st->directory;
}

IOStatus SluiceFileSystem::FileExists(const std::string& fname, const IOOptions& options, IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) return posix_->FileExists(r.path, options, dbg);
  auto st = mount_->fs().stat(r.path);
  if (st.ok()) return IOStatus::OK();
  std::string kernel;
  IOStatus s = fall_back(r, st.status(), &kernel);
  if (!kernel.empty()) return posix_->FileExists(kernel, options, dbg);
  IOStatus missing = missing_is_not_found(st.status());
  return missing.IsNotFound() ? missing : s;
}

// RocksDB's contract, as its POSIX FileSystem keeps it (env_basic_test checks it): the
// caller's vector is emptied on every call, success or not, and a directory that is not
// there, or is not a directory, is NotFound (not an IOError: DestroyDB, backup and
// obsolete-file scans tell "no such directory" from a failed listing by IsNotFound).
IOStatus SluiceFileSystem::GetChildren(const std::string& dir, const IOOptions& options,
                                       std::vector<std::string>* result, IODebugContext* dbg) {
  result->clear();
  Route r = route(dir);
  if (!r.sluice) return posix_->GetChildren(r.path, options, result, dbg);
  auto names = mount_->fs().list(r.path);
  if (fallback_ && fallback_->is_dir(r.path)) return merge_children(std::move(names), result);
  if (!names.ok()) return missing_is_not_found(names.status());
  *result = std::move(*names);
  // WAL files of this directory kept on the POSIX side (wal_dir).
  std::string mirror = wal_mirror(r.path);
  std::vector<std::string> wals;
  if (!mirror.empty() && posix_->GetChildren(mirror, options, &wals, dbg).ok()) {
    for (auto& w : wals)
      if (w.ends_with(".log")) result->push_back(std::move(w));
  }
  return IOStatus::OK();
}

// The default (FileSystem's) keeps the caller's old entries when the listing fails.
IOStatus SluiceFileSystem::GetChildrenFileAttributes(const std::string& dir, const IOOptions& options,
                                                     std::vector<::rocksdb::FileAttributes>* result,
                                                     IODebugContext* dbg) {
  result->clear();
  return FileSystem::GetChildrenFileAttributes(dir, options, result, dbg);
}

// The fallback directory lists what SluiceFS holds and the kernel files not yet deleted.
IOStatus SluiceFileSystem::merge_children(Result<std::vector<std::string>> names,
                                          std::vector<std::string>* result) {
  if (!names.ok() && names.status().code() != Errc::not_found) return missing_is_not_found(names.status());
  auto kernel = fallback_->kernel_names();
  if (!names.ok() && !kernel.ok()) return missing_is_not_found(names.status());  // on neither side
  if (!kernel.ok()) return to_io_status(kernel.status());
  if (names.ok()) *result = std::move(*names);
  std::erase(*result, std::string(Fallback::kRecordName));
  result->insert(result->end(), kernel->begin(), kernel->end());
  std::sort(result->begin(), result->end());
  result->erase(std::unique(result->begin(), result->end()), result->end());
  return IOStatus::OK();
}

// A file still on the kernel side is tombstoned, never deleted there (the kernel directory
// is read-only to the plugin); a SluiceFS file shadowing one takes the kernel copy with it.
IOStatus SluiceFileSystem::DeleteFile(const std::string& fname, const IOOptions& options, IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) return posix_->DeleteFile(r.path, options, dbg);
  Status st = mount_->fs().unlink(r.path);
  if (!fallback_) return to_io_status(st);
  auto kernel = fallback_->kernel_path(r.path);
  if (!kernel.ok()) return to_io_status(kernel.status());
  if (kernel->empty() || !posix_->FileExists(*kernel, options, dbg).ok()) return to_io_status(st);
  if (!st.ok() && st.code() != Errc::not_found) return to_io_status(st);
  return to_io_status(fallback_->tombstone(r.path.substr(r.path.rfind('/') + 1)));
}

IOStatus SluiceFileSystem::Truncate(const std::string& fname, size_t size, const IOOptions& options,
                                    IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) return posix_->Truncate(r.path, size, options, dbg);
  if (only_in_kernel(r))
    return IOStatus::NotSupported(fmt::format("truncate {}: the file is still in the fallback directory", fname));
  return to_io_status(mount_->fs().truncate(r.path, size));
}

IOStatus SluiceFileSystem::CreateDir(const std::string& dirname, const IOOptions& options, IODebugContext* dbg) {
  Route r = route(dirname);
  if (!r.sluice) return posix_->CreateDir(r.path, options, dbg);
  Status st = mount_->fs().mkdir(r.path);
  if (st.code() == Errc::exists) return IOStatus::IOError(st.message());
  return to_io_status(st);
}

// Creates missing parents too, so that any DB path works on a fresh image.
IOStatus SluiceFileSystem::CreateDirIfMissing(const std::string& dirname, const IOOptions& options,
                                              IODebugContext* dbg) {
  Route r = route(dirname);
  if (!r.sluice) return posix_->CreateDirIfMissing(r.path, options, dbg);
  Status st = mount_->fs().mkdirs(r.path);
  if (st.ok() || (st.code() == Errc::exists && is_dir(r.path))) return IOStatus::OK();
  if (st.code() == Errc::exists) return IOStatus::IOError(fmt::format("{} exists but is not a directory", dirname));
  return to_io_status(st);
}

IOStatus SluiceFileSystem::DeleteDir(const std::string& dirname, const IOOptions& options, IODebugContext* dbg) {
  Route r = route(dirname);
  if (!r.sluice) return posix_->DeleteDir(r.path, options, dbg);
  Status st = mount_->fs().rmdir(r.path);
  if (st.ok() && !uri_.wal_dir.empty()) (void)posix_->DeleteDir(wal_mirror(r.path), options, dbg);
  return to_io_status(st);
}

IOStatus SluiceFileSystem::GetFileSize(const std::string& fname, const IOOptions& options, uint64_t* file_size,
                                       IODebugContext* dbg) {
  *file_size = 0;  // on failure too, as POSIX's
  Route r = route(fname);
  if (!r.sluice) return posix_->GetFileSize(r.path, options, file_size, dbg);
  auto st = mount_->fs().stat(r.path);
  if (!st.ok()) {
    std::string kernel;
    IOStatus s = fall_back(r, st.status(), &kernel);
    return kernel.empty() ? s : posix_->GetFileSize(kernel, options, file_size, dbg);
  }
  *file_size = st->size;
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::GetFileModificationTime(const std::string& fname, const IOOptions& options,
                                                   uint64_t* file_mtime, IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) return posix_->GetFileModificationTime(r.path, options, file_mtime, dbg);
  auto st = mount_->fs().stat(r.path);
  if (!st.ok()) {
    std::string kernel;
    IOStatus s = fall_back(r, st.status(), &kernel);
    return kernel.empty() ? s : posix_->GetFileModificationTime(kernel, options, file_mtime, dbg);
  }
  *file_mtime = static_cast<uint64_t>(st->mtime_ns / 1000000000);  // seconds, as POSIX's st_mtime
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::RenameFile(const std::string& src, const std::string& target, const IOOptions& options,
                                      IODebugContext* dbg) {
  Route from = route(src), to = route(target);
  if (from.sluice != to.sluice)
    return IOStatus::NotSupported(fmt::format("rename {} -> {}: between SluiceFS and the POSIX file system", src, target));
  if (!from.sluice) return posix_->RenameFile(from.path, to.path, options, dbg);
  if (only_in_kernel(from)) return to_io_status(fallback_->move_in(from.path.substr(from.path.rfind('/') + 1), to.path));
  return to_io_status(mount_->fs().rename(from.path, to.path));
}

// SluiceFS has no hard links; RocksDB's Checkpoint falls back to copying.
IOStatus SluiceFileSystem::LinkFile(const std::string& src, const std::string& target, const IOOptions& options,
                                    IODebugContext* dbg) {
  Route from = route(src), to = route(target);
  if (!from.sluice && !to.sluice) return posix_->LinkFile(from.path, to.path, options, dbg);
  return IOStatus::NotSupported("SluiceFS has no hard links");
}

// Like POSIX, creates the file when missing; the lock itself lives in this process.
IOStatus SluiceFileSystem::LockFile(const std::string& fname, const IOOptions& options, ::rocksdb::FileLock** lock,
                                    IODebugContext* dbg) {
  *lock = nullptr;
  Route r = route(fname);
  if (!r.sluice) return posix_->LockFile(r.path, options, lock, dbg);
  auto f = mount_->fs().open(r.path, {.write = true, .create = true});
  if (!f.ok()) return to_io_status(f.status());
  (void)(*f)->close();
  auto held = mount_->fs().lock(r.path);
  if (!held.ok()) return IOStatus::IOError(fmt::format("lock {}: {}", fname, held.status().to_string()));
  *lock = new SluiceLock(mount_, std::move(*held));
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::UnlockFile(::rocksdb::FileLock* lock, const IOOptions& options, IODebugContext* dbg) {
  if (auto* ours = dynamic_cast<SluiceLock*>(lock)) {
    delete ours;
    return IOStatus::OK();
  }
  return posix_->UnlockFile(lock, options, dbg);
}

IOStatus SluiceFileSystem::GetTestDirectory(const IOOptions& options, std::string* path, IODebugContext* dbg) {
  *path = fmt::format("{}/tmp/rocksdbtest-{}", uri_.root == "/" ? "" : uri_.root, geteuid());
  return CreateDirIfMissing(*path, options, dbg);
}

IOStatus SluiceFileSystem::NewLogger(const std::string& fname, const IOOptions& io_opts,
                                     std::shared_ptr<::rocksdb::Logger>* result, IODebugContext* dbg) {
  Route r = route(fname);
  if (!r.sluice) return posix_->NewLogger(r.path, io_opts, result, dbg);
  std::unique_ptr<::rocksdb::FSWritableFile> file;
  IOStatus s = open_writable(r, {}, true, &file);
  if (!s.ok()) return s;
  return new_sluice_logger(std::move(file), result);
}

// Relative paths are taken from the SluiceFS root (there is no working directory).
IOStatus SluiceFileSystem::GetAbsolutePath(const std::string& db_path, const IOOptions&, std::string* output_path,
                                           IODebugContext*) {
  if (!db_path.empty() && db_path[0] == '/') {
    *output_path = db_path;
  } else {
    *output_path = normalize_path((uri_.root == "/" ? "" : uri_.root) + "/" + db_path);
  }
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::GetFreeSpace(const std::string& path, const IOOptions& options, uint64_t* diskfree,
                                        IODebugContext* dbg) {
  Route r = route(path);
  if (!r.sluice) return posix_->GetFreeSpace(r.path, options, diskfree, dbg);
  *diskfree = mount_->fs().statfs().free_bytes;  // without the reserve: writes cannot use it
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::IsDirectory(const std::string& path, const IOOptions& options, bool* is_dir_out,
                                       IODebugContext* dbg) {
  Route r = route(path);
  if (!r.sluice) return posix_->IsDirectory(r.path, options, is_dir_out, dbg);
  auto st = mount_->fs().stat(r.path);
  if (!st.ok()) return to_io_status(st.status());
  *is_dir_out = st->directory;
  return IOStatus::OK();
}

IOStatus SluiceFileSystem::Poll(std::vector<void*>& io_handles, size_t) { return poll_async_reads(io_handles); }

IOStatus SluiceFileSystem::AbortIO(std::vector<void*>& io_handles) { return abort_async_reads(io_handles); }

}  // namespace sluice::rocksdb_plugin
