#include "bdev/file_target.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace sluice::bdev {
namespace {

constexpr uint32_t kDefaultQueueDepth = 256;
constexpr uint32_t kMaxTransferBytes = 1 << 20;
constexpr uint32_t kMinAlign = 512;
constexpr size_t kZeroBytes = 1 << 20;  // the zero-write fallback's chunk

// A read-only mapping of zero pages: costs address space, not memory.
const void* zero_buffer() {
  static const void* zeroes = [] {
    void* p = mmap(nullptr, kZeroBytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }();
  return zeroes;
}

Errc retry_eintr(int (*fn)(int, int, off_t, off_t), int fd, int mode, uint64_t offset, uint64_t len) {
  for (;;) {
    if (fn(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0) return Errc::ok;
    if (errno != EINTR) return errno_errc(errno);
  }
}

Errc block_ioctl(int fd, unsigned long request, uint64_t offset, uint64_t len) {
  uint64_t range[2] = {offset, len};
  for (;;) {
    if (ioctl(fd, request, range) == 0) return Errc::ok;
    if (errno != EINTR) return errno_errc(errno);
  }
}

// A block device queue attribute from sysfs (partitions find it on their parent disk), or
// `fallback` when unreadable.
uint64_t queue_attribute(dev_t dev, const char* name, uint64_t fallback) {
  for (const char* dir : {"queue", "../queue"}) {
    std::ifstream in(fmt::format("/sys/dev/block/{}:{}/{}/{}", major(dev), minor(dev), dir, name));
    uint64_t value = 0;
    if (in >> value) return value;
  }
  return fallback;
}

std::string spec_of(const SpecArgs& args) {
  std::string spec = fmt::format("{}:{}", args.scheme, args.target);
  char sep = '?';
  for (const auto& [k, v] : args.options) {
    spec += fmt::format("{}{}={}", sep, k, v);
    sep = '&';
  }
  return spec;
}

}  // namespace

Errc errno_errc(int err) {
  switch (err) {
    case 0: return Errc::ok;
    case ENOENT: case ENODEV: case ENXIO: return Errc::not_found;
    case EACCES: case EPERM: case EROFS: return Errc::permission;
    case EINVAL: case EBADF: case EFAULT: case ENOTBLK: return Errc::invalid_argument;
    case EEXIST: return Errc::exists;
    case EBUSY: case EAGAIN: return Errc::busy;
    case ENOSPC: case EDQUOT: return Errc::no_space;
    case EOPNOTSUPP: return Errc::not_supported;
    case EFBIG: case EOVERFLOW: return Errc::out_of_range;
    case ECANCELED: case EINTR: return Errc::aborted;
    default: return Errc::io_error;
  }
}

Result<std::unique_ptr<FileTarget>> FileTarget::open(const SpecArgs& args, uint32_t max_queue_depth) {
  SLUICE_RETURN_IF_ERROR(args.check_known({"bs", "qd", "mt"}));
  const std::string& scheme = args.scheme;
  const std::string& path = args.target;
  std::unique_ptr<FileTarget> t(new FileTarget());
  t->path_ = path;
  t->spec_ = spec_of(args);
  auto os_error = [&](std::string_view what) {
    int err = errno;
    return errno_status(err, fmt::format("{}: {} {}", scheme, what, path));
  };

  // The type first: opening a character device with O_DIRECT fails as if the file system
  // refused direct I/O, and a FIFO would not open at all.
  struct stat st = {};
  if (::stat(path.c_str(), &st) != 0) return os_error("cannot open");
  if (S_ISDIR(st.st_mode))
    return Status(Errc::invalid_argument, fmt::format("{}: {} is a directory, not a file or block device", scheme, path));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return Status(Errc::invalid_argument, fmt::format("{}: {} is neither a regular file nor a block device", scheme, path));

  // O_NONBLOCK guards the open itself against a path swapped for a FIFO meanwhile; it is
  // cleared below, as io_uring would otherwise fail requests with EAGAIN instead of waiting.
  bool writable = true;
  t->fd_ = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC | O_NONBLOCK);
  if (t->fd_ < 0 && (errno == EROFS || errno == EACCES || errno == EPERM)) {
    writable = false;
    t->fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC | O_NONBLOCK);
  }
  if (t->fd_ < 0) {
    if (errno == EINVAL)
      return Status(Errc::not_supported, fmt::format("{}: cannot open {} for direct I/O: {} (does its file system "
                                                     "support O_DIRECT?)", scheme, path, std::strerror(EINVAL)));
    return os_error("cannot open");
  }

  struct statx sx = {};
  if (statx(t->fd_, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_DIOALIGN, &sx) != 0)
    return os_error("cannot stat");
  t->block_device_ = S_ISBLK(sx.stx_mode);
  if (!S_ISREG(sx.stx_mode) && !t->block_device_)
    return Status(Errc::invalid_argument, fmt::format("{}: {} is neither a regular file nor a block device", scheme, path));
  int fl = fcntl(t->fd_, F_GETFL);
  if (fl < 0 || fcntl(t->fd_, F_SETFL, fl & ~O_NONBLOCK) != 0)
    return os_error("cannot set up");

  // Direct-I/O constraints: offsets and lengths (min_block) and buffer memory (mem_align).
  const bool dio_known = (sx.stx_mask & STATX_DIOALIGN) != 0;
  uint64_t size = 0;
  uint32_t min_block = kMinAlign;
  uint32_t mem_align = kMinAlign;
  if (t->block_device_) {
    int lbs = 0;
    if (ioctl(t->fd_, BLKSSZGET, &lbs) != 0 || ioctl(t->fd_, BLKGETSIZE64, &size) != 0)
      return os_error("cannot query block device");
    min_block = static_cast<uint32_t>(lbs);
    mem_align = dio_known && sx.stx_dio_mem_align != 0 ? sx.stx_dio_mem_align : min_block;
  } else {
    size = sx.stx_size;
    if (dio_known) {
      if (sx.stx_dio_offset_align == 0)
        return Status(Errc::not_supported, fmt::format("{}: the file system of {} does not support direct I/O on it",
                                                       scheme, path));
      min_block = sx.stx_dio_offset_align;
      mem_align = sx.stx_dio_mem_align;
    }
  }

  Geometry g;
  g.block_size = std::max(min_block, kMinAlign);
  g.queue_depth = std::min(kDefaultQueueDepth, max_queue_depth);
  SLUICE_RETURN_IF_ERROR(args.apply_common(g));
  if (g.block_size < min_block)
    return Status(Errc::invalid_argument, fmt::format("{}: block size {} is below the {}-byte direct I/O alignment of {}",
                                                      scheme, g.block_size, min_block, path));
  if (g.queue_depth > max_queue_depth)
    return Status(Errc::invalid_argument, fmt::format("{}: qd {} exceeds the {} this backend allows", scheme,
                                                      g.queue_depth, max_queue_depth));
  g.num_blocks = size / g.block_size;
  if (g.num_blocks == 0)
    return Status(Errc::invalid_argument, fmt::format("{}: {} ({} bytes) is smaller than one block of {} bytes", scheme,
                                                      path, size, g.block_size));
  const uint32_t transfer_limit = kMaxTransferBytes / g.block_size;
  if (g.max_transfer_blocks == 0 || g.max_transfer_blocks > transfer_limit) g.max_transfer_blocks = transfer_limit;
  g.buf_align = std::max(mem_align, kMinAlign);
  g.supported = io_bit(IoType::read) | io_bit(IoType::flush) | io_bit(IoType::reset);
  if (writable) {
    g.supported |= io_bit(IoType::write) | io_bit(IoType::write_zeroes);
    const dev_t rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
    if (!t->block_device_ || queue_attribute(rdev, "discard_max_bytes", 1) != 0) g.supported |= io_bit(IoType::unmap);
  }
  g.unmap_zeroes = !t->block_device_;
  t->geometry_ = g;
  return t;
}

FileTarget::~FileTarget() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
  if (fd_ >= 0) ::close(fd_);
}

Errc FileTarget::unmap(uint64_t offset_blocks, uint64_t num_blocks) const {
  const uint64_t off = offset_blocks * geometry_.block_size, len = num_blocks * geometry_.block_size;
  if (block_device_) return block_ioctl(fd_, BLKDISCARD, off, len);
  Errc e = retry_eintr(fallocate, fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
  return e == Errc::not_supported ? write_zero_buffer(off, len) : e;
}

Errc FileTarget::write_zeroes(uint64_t offset_blocks, uint64_t num_blocks) const {
  const uint64_t off = offset_blocks * geometry_.block_size, len = num_blocks * geometry_.block_size;
  if (block_device_) return block_ioctl(fd_, BLKZEROOUT, off, len);
  Errc e = retry_eintr(fallocate, fd_, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
  // tmpfs, for one, punches holes but cannot zero a range.
  if (e == Errc::not_supported) e = retry_eintr(fallocate, fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
  return e == Errc::not_supported ? write_zero_buffer(off, len) : e;
}

Errc FileTarget::write_zero_buffer(uint64_t offset, uint64_t len) const {
  const void* zeroes = zero_buffer();
  if (zeroes == nullptr) return Errc::not_supported;
  while (len > 0) {
    ssize_t n = pwrite(fd_, zeroes, std::min<uint64_t>(len, kZeroBytes), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno_errc(errno) : Errc::io_error;
    offset += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
  return Errc::ok;
}

Errc FileTarget::flush() const {
  for (;;) {
    if (fdatasync(fd_) == 0) return Errc::ok;
    if (errno != EINTR) return errno_errc(errno);
  }
}

}  // namespace sluice::bdev
