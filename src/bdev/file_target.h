// FileTarget: a regular file or block device opened for direct I/O, as the kernel-I/O
// backends (uring, aio) see it — its descriptor, the geometry derived from it and the spec
// options, and the rare operations both backends run synchronously with a syscall.
//
// Geometry defaults: the block size is the device's logical block size (block devices) or
// 512, raised to the file system's direct-I/O offset alignment when statx reports a larger
// one (regular files); buffers must meet the direct-I/O memory alignment (at least 512).
// A regular file's trailing partial block is not part of the device.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"
#include "bdev/bdev.h"
#include "bdev/spec.h"

namespace sluice::bdev {

class FileTarget {
 public:
  // Opens args.target (O_DIRECT, read-write, or read-only when writing is refused) and
  // derives the geometry from it and args' common options (bs, qd, mt), accepting at most
  // `max_queue_depth` requests per channel. Errors name the scheme and the path.
  static Result<std::unique_ptr<FileTarget>> open(const SpecArgs& args, uint32_t max_queue_depth);
  ~FileTarget();
  FileTarget(const FileTarget&) = delete;
  FileTarget& operator=(const FileTarget&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const Geometry& geometry() const { return geometry_; }
  bool block_device() const { return block_device_; }
  // "uring:/dev/loop0?bs=4096": the spec this target was opened from, options included.
  const std::string& spec() const { return spec_; }

  // Synchronous; each returns the request's completion status. Unmapped blocks of a regular
  // file read back as zeroes; a block device's may not.
  Errc unmap(uint64_t offset_blocks, uint64_t num_blocks) const;
  Errc write_zeroes(uint64_t offset_blocks, uint64_t num_blocks) const;
  Errc flush() const;  // fdatasync

  // Bdev::lock_backing() for both backends: an open-file-description lock (F_OFD_SETLK) on
  // the whole file, taken through a descriptor of its own, so it conflicts with any other
  // descriptor of the file (even in this process) and goes away the moment the process dies.
  // Not through fd_: io_uring's registered-file table holds fd_'s file too, and after a
  // SIGKILL the kernel drops that reference only when the ring's deferred teardown runs, so
  // a lock on it would outlive the process for a while.
  // lock(true) on a read lock converts it to a write lock (a refused conversion keeps the read
  // lock); any other lock() while locked is a no-op. The registry calls these for the bdev's
  // first handle, a first writable one, and its last close.
  Status lock(bool write);
  void unlock();

 private:
  FileTarget() = default;
  Errc write_zero_buffer(uint64_t offset, uint64_t len) const;

  int fd_ = -1;
  bool block_device_ = false;
  std::string path_;
  std::string spec_;
  Geometry geometry_;
  std::mutex lock_mu_;
  int lock_fd_ = -1;  // the descriptor holding the lock, or -1
  bool locked_for_write_ = false;
};

// The Errc a failed system call's errno maps to (the hot-path form of errno_status()).
Errc errno_errc(int err);

}  // namespace sluice::bdev
