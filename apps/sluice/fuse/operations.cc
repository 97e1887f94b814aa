// The FUSE callbacks: each maps one POSIX call onto SluiceFS (fs.h) and its Status onto an
// errno. What SluiceFS has no notion of (owners, permissions, links, xattrs, set times) is
// either a harmless no-op (utimens: `touch` must work on existing files) or unsupported.
#define FUSE_USE_VERSION 312
#include <fuse.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "fuse/fuse_fs.h"

namespace sluice::fuse {
namespace {

Mounted& mounted() { return *static_cast<Mounted*>(fuse_get_context()->private_data); }
fs::FileSystem& sfs() { return mounted().fs(); }
Handle* handle(const fuse_file_info* fi) { return reinterpret_cast<Handle*>(fi->fh); }
int fail(const Status& st) { return -errno_for(st); }

// Permission bits are a presentation: SluiceFS stores none. Read-only mounts show none
// writable so that tools say "read-only" before they try.
void fill_stat(const fs::FileStat& s, struct stat* st) {
  Mounted& m = mounted();
  std::memset(st, 0, sizeof(*st));
  const mode_t write_bits = m.read_only() ? 0 : 0200;
  st->st_mode = s.directory ? (S_IFDIR | 0555 | write_bits) : (S_IFREG | 0444 | write_bits);
  st->st_nlink = s.directory ? 2 : 1;
  st->st_uid = m.uid;
  st->st_gid = m.gid;
  st->st_ino = s.id;
  st->st_size = static_cast<off_t>(s.size);
  st->st_blocks = static_cast<blkcnt_t>(s.allocated / 512);
  st->st_mtim.tv_sec = static_cast<time_t>(s.mtime_ns / 1000000000);
  st->st_mtim.tv_nsec = static_cast<long>(s.mtime_ns % 1000000000);
  st->st_atim = st->st_mtim;
  st->st_ctim = st->st_mtim;
}

// An open file's attributes when its path is gone (unlinked while open: hard_remove).
int handle_stat(Handle* h, struct stat* st) {
  std::lock_guard lock(h->mu);
  fs::FileStat s;
  s.size = h->file->size();
  s.allocated = s.size;
  s.id = h->file->id();
  fill_stat(s, st);
  return 0;
}

int op_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (path == nullptr) return fi != nullptr ? handle_stat(handle(fi), st) : -ENOENT;
  auto s = sfs().stat(path);
  if (!s.ok()) return fail(s.status());
  fill_stat(*s, st);
  return 0;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info*, fuse_readdir_flags) {
  auto names = sfs().list(path);
  if (!names.ok()) return fail(names.status());
  filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  for (const auto& n : *names)
    if (filler(buf, n.c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
  return 0;
}

int open_file(const char* path, fuse_file_info* fi, bool create) {
  const bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
  if ((write || create) && mounted().read_only()) return -EROFS;
  fs::OpenOptions o;
  o.write = write || create;
  o.create = create;
  o.exclusive = create && (fi->flags & O_EXCL) != 0;
  o.truncate = o.write && (fi->flags & O_TRUNC) != 0;
  auto f = sfs().open(path, o);
  if (!f.ok()) return fail(f.status());
  fi->fh = reinterpret_cast<uint64_t>(mounted().add(std::move(f.value()), o.write));
  return 0;
}

int op_open(const char* path, fuse_file_info* fi) { return open_file(path, fi, false); }
int op_create(const char* path, mode_t, fuse_file_info* fi) { return open_file(path, fi, true); }

int op_release(const char*, fuse_file_info* fi) {
  Status st = mounted().remove(handle(fi));
  return st.ok() ? 0 : fail(st);
}

int op_read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Handle* h = handle(fi);
  std::lock_guard lock(h->mu);
  size_t done = 0;
  while (done < size) {  // FUSE wants the whole request unless at end of file
    auto n = h->file->pread(buf + done, size - done, static_cast<uint64_t>(off) + done);
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    done += *n;
  }
  return static_cast<int>(done);
}

int op_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Handle* h = handle(fi);
  if (!h->writable) return -EBADF;
  std::lock_guard lock(h->mu);
  Status st = h->file->pwrite(buf, size, static_cast<uint64_t>(off));
  return st.ok() ? static_cast<int>(size) : fail(st);
}

int op_fsync(const char*, int, fuse_file_info* fi) {
  Handle* h = handle(fi);
  std::lock_guard lock(h->mu);
  Status st = h->file->sync();
  return st.ok() ? 0 : fail(st);
}

int op_fsyncdir(const char* path, int, fuse_file_info*) {
  if (mounted().read_only() || path == nullptr) return 0;
  Status st = sfs().sync_dir(path);
  return st.ok() ? 0 : fail(st);
}

int op_truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (mounted().read_only()) return -EROFS;
  if (size < 0) return -EINVAL;
  Status st;
  if (fi != nullptr && handle(fi)->writable) {
    Handle* h = handle(fi);
    std::lock_guard lock(h->mu);
    st = h->file->truncate(static_cast<uint64_t>(size));
  } else if (path != nullptr) {
    st = sfs().truncate(path, static_cast<uint64_t>(size));
  } else {
    return -EBADF;
  }
  return st.ok() ? 0 : fail(st);
}

// Namespace changes: refused on a read-only mount before SluiceFS sees them (the kernel
// already refuses most with EROFS because the mount is "ro").
template <typename F>
int change(F f) {
  if (mounted().read_only()) return -EROFS;
  Status st = f(sfs());
  return st.ok() ? 0 : fail(st);
}

int op_mkdir(const char* path, mode_t) { return change([&](fs::FileSystem& f) { return f.mkdir(path); }); }
int op_rmdir(const char* path) { return change([&](fs::FileSystem& f) { return f.rmdir(path); }); }
int op_unlink(const char* path) { return change([&](fs::FileSystem& f) { return f.unlink(path); }); }

int op_rename(const char* from, const char* to, unsigned int flags) {
  if (flags & RENAME_EXCHANGE) return -EINVAL;  // SluiceFS has no atomic swap
  return change([&](fs::FileSystem& f) -> Status {
    // Not atomic with the rename; only a racing creator inside this mount could notice.
    if ((flags & RENAME_NOREPLACE) && f.stat(to).ok()) return Status(Errc::exists, "the target exists");
    return f.rename(from, to);
  });
}

int op_utimens(const char* path, const struct timespec*, fuse_file_info*) {
  if (path == nullptr) return 0;
  auto s = sfs().stat(path);  // SluiceFS keeps its own mtimes: accepted, not applied
  return s.ok() ? 0 : fail(s.status());
}

int op_statfs(const char*, struct statvfs* st) {
  const fs::FsStat s = sfs().statfs();
  const unsigned long unit = s.block_size ? s.block_size : 4096;
  std::memset(st, 0, sizeof(*st));
  st->f_bsize = unit;
  st->f_frsize = unit;
  st->f_blocks = s.total_bytes / unit;
  // As ext4 does with its root reserve: the reserve is free (df's Used leaves it out) but
  // not available (df's Avail), since file growth may not take it.
  st->f_bfree = (s.free_bytes + s.reserved_bytes) / unit;
  st->f_bavail = s.free_bytes / unit;
  st->f_files = s.files + s.directories;
  st->f_ffree = st->f_bavail;  // no inode table: each file costs space, not a slot
  st->f_namemax = 255;
  return 0;
}

void* op_init(fuse_conn_info*, fuse_config* cfg) {
  cfg->use_ino = 1;      // st_ino is the blob id, stable while the file exists
  // SluiceFS keeps unlinked files readable through open handles itself (RocksDB relies on
  // it); operations on them then come with the handle and no path.
  cfg->hard_remove = 1;
  // Nobody else changes a read-only mount's files: let the kernel keep their pages.
  cfg->kernel_cache = static_cast<Mounted*>(fuse_get_context()->private_data)->read_only() ? 1 : 0;
  return fuse_get_context()->private_data;
}

fuse_operations make_operations() {
  fuse_operations ops = {};
  ops.init = op_init;
  ops.getattr = op_getattr;
  ops.readdir = op_readdir;
  ops.open = op_open;
  ops.create = op_create;
  ops.release = op_release;
  ops.read = op_read;
  ops.write = op_write;
  ops.fsync = op_fsync;
  ops.fsyncdir = op_fsyncdir;
  ops.truncate = op_truncate;
  ops.mkdir = op_mkdir;
  ops.rmdir = op_rmdir;
  ops.unlink = op_unlink;
  ops.rename = op_rename;
  ops.utimens = op_utimens;
  ops.statfs = op_statfs;
  return ops;
}

}  // namespace

const fuse_operations& operations() {
  static const fuse_operations ops = make_operations();
  return ops;
}

}  // namespace sluice::fuse
