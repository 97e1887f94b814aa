// SluiceFS through FUSE (`sluice mount`, docs/fuse.md): libfuse3's high-level, path-based
// API, because SluiceFS's own API is path-based too — there is no inode table to keep.
//
// - Every callback may run on any of the loop's threads, which SluiceFS allows; each thread
//   gets its own SluiceFS channel on its first I/O. The loop's thread count is bounded
//   (FuseOptions::threads) and idle threads are kept, so channels are not churned.
// - An open file is one fs::File. The kernel may issue reads of one open file from several
//   threads at once, and a fs::File is used by one thread at a time, so each has a mutex.
// - Nothing is durable before fsync() or unmount, as on a kernel filesystem; the unmount that
//   ends run_fuse() is SluiceFS's clean one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "base/status.h"
#include "fs/fs.h"

struct fuse_operations;  // <fuse.h>, which wants FUSE_USE_VERSION defined first

namespace sluice::fuse {

struct FuseOptions {
  bool read_only = true;
  unsigned threads = 4;  // request threads, at least 1
  bool allow_other = false;
};

// An open file as the kernel holds it (fuse_file_info::fh).
struct Handle {
  std::mutex mu;
  std::unique_ptr<fs::File> file;
  bool writable = false;
};

// What the callbacks share (fuse_get_context()->private_data).
class Mounted {
 public:
  Mounted(fs::FileSystem& fs, const FuseOptions& opts) : fs_(fs), opts_(opts) {}
  fs::FileSystem& fs() { return fs_; }
  bool read_only() const { return opts_.read_only; }
  uid_t uid = 0;
  gid_t gid = 0;

  Handle* add(std::unique_ptr<fs::File> file, bool writable);
  Status remove(Handle* h);  // closes it
  // Closes what the kernel did not release (a signal ended the loop with files open), so
  // that SluiceFS can unmount; returns how many there were.
  size_t close_all();

 private:
  fs::FileSystem& fs_;
  FuseOptions opts_;
  std::mutex mu_;
  std::set<Handle*> open_;
};

// The errno a SluiceFS status means to a POSIX caller.
int errno_for(const Status& st);

// The callback table (operations.cc).
const ::fuse_operations& operations();

// Mounts `fs` at `mountpoint` and serves it until unmounted (fusermount3 -u, umount) or
// until SIGINT, SIGTERM or SIGHUP; then closes leftover handles. The caller unmounts `fs`.
// `on_ready` runs once the mount is visible. Errors name the mountpoint.
Status run_fuse(fs::FileSystem& fs, const std::string& device, const std::string& mountpoint,
                const FuseOptions& opts, const std::function<void()>& on_ready);

}  // namespace sluice::fuse
