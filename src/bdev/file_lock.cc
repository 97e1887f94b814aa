// FileTarget::lock/unlock: the cross-process claim on a device's host file (bdev.h,
// Bdev::lock_backing). Why OFD locks: classic POSIX record locks belong to the process, so a
// second open of the same image in this process would silently share the first one's lock
// (and its close would drop it); an OFD lock belongs to one descriptor, like QEMU's image
// locks, and lslocks shows it.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "bdev/file_target.h"

namespace sluice::bdev {
namespace {

struct flock whole_file(short type) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // to the end, however large the file grows
  return fl;
}

}  // namespace

Status FileTarget::lock(bool write) {
  std::lock_guard guard(lock_mu_);
  if (lock_fd_ >= 0 && (locked_for_write_ || !write)) return Status::Ok();  // already held strongly enough
  const bool upgrade = lock_fd_ >= 0;
  if (!upgrade) {
    // Opened for writing whenever the file allows it, so that a read lock can later become a
    // write lock on the same descriptor (a lock on a second descriptor would conflict with it).
    lock_fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (lock_fd_ < 0 && !write && (errno == EACCES || errno == EROFS || errno == EPERM))
      lock_fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (lock_fd_ < 0) {
      const int err = errno;
      if (write && (err == EACCES || err == EROFS || err == EPERM))
        return Status(Errc::permission, fmt::format("{} is read-only here; cannot open it for writing", path_));
      return errno_status(err, fmt::format("cannot lock {}", path_));
    }
  }
  struct flock fl = whole_file(write ? F_WRLCK : F_RDLCK);
  for (;;) {
    if (fcntl(lock_fd_, F_OFD_SETLK, &fl) == 0) {
      locked_for_write_ = write;
      return Status::Ok();
    }
    if (errno != EINTR) break;
  }
  const int err = errno;
  // Say what the holder does: the lock type is all an OFD lock tells (its l_pid is -1).
  struct flock held = whole_file(F_WRLCK);
  const bool writer = fcntl(lock_fd_, F_OFD_GETLK, &held) != 0 || held.l_type != F_RDLCK;
  if (!upgrade) {  // a failed conversion leaves the read lock as it was
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
  if (upgrade && err == EBADF)
    return Status(Errc::permission, fmt::format("{} is read-only here; cannot open it for writing", path_));
  if (err != EAGAIN && err != EACCES) return errno_status(err, fmt::format("cannot lock {}", path_));
  return Status(Errc::busy, fmt::format("{} is in use: another process (or another device over it in this process) {}",
                                        path_, writer ? "has it open for writing" : "has it open read-only"));
}

void FileTarget::unlock() {
  std::lock_guard guard(lock_mu_);
  if (lock_fd_ < 0) return;
  ::close(lock_fd_);  // closing the lock's only descriptor releases it
  lock_fd_ = -1;
  locked_for_write_ = false;
}

}  // namespace sluice::bdev
