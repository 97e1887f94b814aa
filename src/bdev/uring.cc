// The uring bdev: a file or block device driven through io_uring with O_DIRECT.
//
// Each channel has its own ring, created on the owning thread and sized so that everything
// the channel can have outstanding (its requests and split children) fits. submit() only
// fills an SQE; poll() hands everything queued to the kernel with one io_uring_enter and
// reaps completions in batches.
//
// Kernel features, each used when available:
// - SINGLE_ISSUER | DEFER_TASKRUN: completions are posted only when the owner asks, in
//   batches, with no interrupt of the polling thread. TASKRUN_FLAG makes the kernel raise
//   IORING_SQ_TASKRUN when such work waits, so poll() enters the kernel to collect it only
//   then (an idle poll costs two loads, no system call). Older kernels: COOP_TASKRUN, then
//   plain rings.
// - The target's descriptor is registered (fixed file 0), and so is the ring's own.
// - DMA memory (env.h) is registered as fixed buffers as the pool maps it: a request whose
//   single segment lies in DMA memory is sent as READ_FIXED/WRITE_FIXED and skips the
//   kernel's per-I/O page pinning. Other buffers use READ/WRITE, or READV/WRITEV when
//   segmented.
// - Completion wake-up: an eventfd registered with the ring, so that the owner can sleep
//   (poll(2) on it) instead of spinning while requests are in flight. Its notifications stay
//   disabled (IORING_CQ_EVENTFD_DISABLED) except while the owner sleeps, so a polling owner
//   pays nothing for it; with DEFER_TASKRUN the kernel signals it once per batch of
//   completions (when its task-work list turns non-empty), not per request.
// Unmap and write_zeroes run synchronously in submit() (FileTarget); they are rare.
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/barrier.h"
#include "base/log.h"
#include "bdev/channel.h"
#include "bdev/file_target.h"
#include "bdev/modules.h"
#include "env/env.h"

namespace sluice::bdev {
namespace {

constexpr unsigned kMaxRingEntries = 32768;   // the kernel's IORING_MAX_ENTRIES
constexpr unsigned kReapBatch = 64;
constexpr unsigned kBufferSlots = 256;        // fixed-buffer table size per ring
constexpr size_t kMaxFixedBuffer = 1ul << 30;  // the kernel's limit per registered buffer
// A safety net: with requests outstanding and nothing reaped for this many polls (some
// milliseconds), enter the kernel even though it did not flag pending work. Rare enough
// not to add system calls to slow devices.
constexpr uint32_t kIdlePollsBeforeEnter = 1u << 16;

// Setup flags, best first; the first the kernel accepts wins.
constexpr unsigned kSetupTiers[] = {
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SINGLE_ISSUER |
        IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    0,
};

// Creates `ring` with the best flags from `first_tier` on; returns the flags used or -errno.
int64_t init_ring(io_uring* ring, unsigned entries, size_t first_tier) {
  int err = -EINVAL;
  for (size_t i = first_tier; i < std::size(kSetupTiers); ++i) {
    io_uring_params p = {};
    p.flags = kSetupTiers[i];
    err = io_uring_queue_init_params(entries, ring, &p);
    if (err == 0) return kSetupTiers[i];
    if (err != -EINVAL) break;
  }
  return err;
}

size_t tier_of(unsigned flags) {
  for (size_t i = 0; i < std::size(kSetupTiers); ++i)
    if (kSetupTiers[i] == flags) return i;
  return std::size(kSetupTiers) - 1;
}

class UringQueue final : public BackendQueue {
 public:
  explicit UringQueue(const FileTarget& target) : target_(target), bs_(target.geometry().block_size) {}
  ~UringQueue() override;

  Status init(unsigned entries, unsigned setup_flags);
  void submit(BdevIo* io) override;
  int poll() override;
  int wake_fd() const override { return wake_fd_; }
  bool prepare_sleep() override;
  void finish_sleep(bool woken) override;
  bool wait_in_kernel(uint64_t timeout_ns) override;

 private:
  struct FixedRegion {
    uintptr_t begin, end;
    int slot;
  };

  void prep_rw(BdevIo* io);
  io_uring_sqe* next_sqe();
  int fixed_slot(const iovec& v);
  void register_new_regions();
  void setup_wake(unsigned setup_flags);
  int reap();
  bool kernel_has_work() const {
    return (__atomic_load_n(ring_.sq.kflags, __ATOMIC_RELAXED) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
  }

  const FileTarget& target_;
  const uint32_t bs_;
  io_uring ring_ = {};
  bool ring_ok_ = false;
  int file_ = -1;          // fixed-file index, or the descriptor itself
  uint8_t sqe_flags_ = 0;  // IOSQE_FIXED_FILE when the file is registered
  uint32_t in_flight_ = 0;  // SQEs handed out and not yet reaped
  uint32_t idle_polls_ = 0;
  int wake_fd_ = -1;  // eventfd registered with the ring; -1: none, the owner polls

  // Fixed buffers. The pool's watcher may run on any thread: it only raises the flag, and
  // the owner registers the new regions itself (a SINGLE_ISSUER ring allows nothing else).
  bool fixed_buffers_ = false;
  uint64_t watch_ = 0;
  std::atomic<bool> regions_changed_{false};
  std::vector<FixedRegion> regions_;
};

Status UringQueue::init(unsigned entries, unsigned setup_flags) {
  int64_t r = init_ring(&ring_, entries, tier_of(setup_flags));
  if (r < 0)
    return errno_status(static_cast<int>(-r), fmt::format("uring: cannot create a ring of {} entries", entries));
  ring_ok_ = true;
  io_uring_register_ring_fd(&ring_);  // optional: saves a descriptor lookup per enter

  int fd = target_.fd();
  if (io_uring_register_files(&ring_, &fd, 1) == 0) {
    file_ = 0;
    sqe_flags_ = IOSQE_FIXED_FILE;
  } else {
    file_ = fd;
  }

  if (io_uring_register_buffers_sparse(&ring_, kBufferSlots) == 0) {
    fixed_buffers_ = true;
    regions_.reserve(kBufferSlots);
    watch_ = env::dma_watch_regions([this](const iovec&) { regions_changed_.store(true, std::memory_order_release); });
    register_new_regions();
  } else {
    log::debug("uring {}: no fixed buffers (sparse registration refused)", target_.path());
  }
  setup_wake(static_cast<unsigned>(r));
  return Status::Ok();
}

void UringQueue::setup_wake(unsigned setup_flags) {
  // COOP_TASKRUN without DEFER_TASKRUN queues completions as task work that does not wake a
  // task sleeping elsewhere than in io_uring_enter: such a ring is polled, as before.
  if ((setup_flags & IORING_SETUP_COOP_TASKRUN) != 0 && (setup_flags & IORING_SETUP_DEFER_TASKRUN) == 0) return;
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    log::debug("uring {}: no completion wake-up (eventfd: {})", target_.path(), std::strerror(errno));
    return;
  }
  int r = io_uring_register_eventfd(&ring_, fd);
  if (r == 0) r = io_uring_cq_eventfd_toggle(&ring_, false);  // armed only while the owner sleeps
  if (r != 0) {
    log::debug("uring {}: no completion wake-up ({})", target_.path(), std::strerror(-r));
    if (ring_ok_) io_uring_unregister_eventfd(&ring_);
    close(fd);
    return;
  }
  wake_fd_ = fd;
}

bool UringQueue::prepare_sleep() {
  if (wake_fd_ < 0 || io_uring_sq_ready(&ring_) != 0) return false;  // submissions wait for poll()
  io_uring_cq_eventfd_toggle(&ring_, true);
  // The kernel queues a completion (raising IORING_SQ_TASKRUN or the CQ tail), then reads
  // the disabled flag, with a full barrier between; this is the mirror image. So either it
  // sees notifications enabled and signals the eventfd, or we see its completion here.
  full_barrier();
  if (io_uring_cq_ready(&ring_) == 0 && !kernel_has_work()) return true;
  io_uring_cq_eventfd_toggle(&ring_, false);
  return false;
}

void UringQueue::finish_sleep(bool woken) {
  io_uring_cq_eventfd_toggle(&ring_, false);
  if (!woken) return;
  // Reset the counter. A signal that raced the disabling above may set it again after this;
  // that costs one spurious wakeup at the next sleep, never a lost one.
  uint64_t count;
  [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
}

bool UringQueue::wait_in_kernel(uint64_t timeout_ns) {
  // Without EXT_ARG (before 5.11) liburing would queue a timeout SQE of its own for the wait.
  if (!ring_ok_ || (ring_.features & IORING_FEAT_EXT_ARG) == 0) return false;
  if (io_uring_cq_ready(&ring_) != 0) return true;
  if (in_flight_ == 0) return false;  // nothing the kernel would complete: only the timer would end it
  // One io_uring_enter: submit, run the deferred completion work, wait for one CQE (or the
  // timeout, -ETIME). poll() reaps what it finds; an error here is seen there again.
  __kernel_timespec ts{static_cast<long long>(timeout_ns / 1000000000u), static_cast<long long>(timeout_ns % 1000000000u)};
  io_uring_cqe* cqe = nullptr;
  (void)io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  return true;
}

UringQueue::~UringQueue() {
  if (watch_ != 0) env::dma_unwatch_regions(watch_);
  if (ring_ok_) io_uring_queue_exit(&ring_);
  if (wake_fd_ >= 0) close(wake_fd_);  // after the ring, which holds a reference to it
}

void UringQueue::register_new_regions() {
  // Clear the flag first: a chunk announced after this is seen by the next look.
  regions_changed_.exchange(false, std::memory_order_acq_rel);
  for (const iovec& region : env::dma_regions()) {
    auto base = reinterpret_cast<uintptr_t>(region.iov_base);
    for (size_t off = 0; off < region.iov_len; off += kMaxFixedBuffer) {
      const uintptr_t begin = base + off, end = begin + std::min(kMaxFixedBuffer, region.iov_len - off);
      bool known = std::any_of(regions_.begin(), regions_.end(), [&](const FixedRegion& f) { return f.begin == begin; });
      if (known) continue;
      if (regions_.size() == kBufferSlots) return;
      const int slot = static_cast<int>(regions_.size());
      iovec piece = {reinterpret_cast<void*>(begin), end - begin};
      int r = io_uring_register_buffers_update_tag(&ring_, static_cast<unsigned>(slot), &piece, nullptr, 1);
      if (r < 0) {
        log::debug("uring {}: cannot register {} bytes at {:#x} as a fixed buffer: {}", target_.path(), end - begin,
                   begin, std::strerror(-r));
        continue;
      }
      regions_.push_back({begin, end, slot});
    }
  }
}

// The fixed-buffer slot holding all of `v`, or -1.
inline int UringQueue::fixed_slot(const iovec& v) {
  if (!fixed_buffers_) return -1;
  const auto begin = reinterpret_cast<uintptr_t>(v.iov_base), end = begin + v.iov_len;
  for (;;) {
    for (const FixedRegion& f : regions_)
      if (begin >= f.begin && end <= f.end) return f.slot;
    // DMA memory mapped since the last look is announced before it is handed out.
    if (!regions_changed_.load(std::memory_order_acquire)) return -1;
    register_new_regions();
  }
}

inline io_uring_sqe* UringQueue::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) [[unlikely]] {
    // Cannot happen while the ring holds every request the channel can own; be safe anyway.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void UringQueue::prep_rw(BdevIo* io) {
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) [[unlikely]] {
    io->channel->complete(io, Errc::busy);
    return;
  }
  const uint64_t offset = io->offset_blocks * bs_;
  const bool read = io->type == IoType::read;
  if (io->iovcnt == 1) {
    const iovec& v = io->iovs[0];
    const auto len = static_cast<unsigned>(v.iov_len);
    int slot = fixed_slot(v);
    if (slot >= 0) {
      if (read) io_uring_prep_read_fixed(sqe, file_, v.iov_base, len, offset, slot);
      else io_uring_prep_write_fixed(sqe, file_, v.iov_base, len, offset, slot);
    } else {
      if (read) io_uring_prep_read(sqe, file_, v.iov_base, len, offset);
      else io_uring_prep_write(sqe, file_, v.iov_base, len, offset);
    }
  } else {
    auto n = static_cast<unsigned>(io->iovcnt);
    if (read) io_uring_prep_readv(sqe, file_, io->iovs, n, offset);
    else io_uring_prep_writev(sqe, file_, io->iovs, n, offset);
  }
  sqe->flags |= sqe_flags_;
  io_uring_sqe_set_data(sqe, io);
  ++in_flight_;
}

void UringQueue::submit(BdevIo* io) {
  switch (io->type) {
    case IoType::read:
    case IoType::write:
      prep_rw(io);
      return;
    case IoType::flush: {
      io_uring_sqe* sqe = next_sqe();
      if (sqe == nullptr) [[unlikely]] {
        io->channel->complete(io, Errc::busy);
        return;
      }
      io_uring_prep_fsync(sqe, file_, IORING_FSYNC_DATASYNC);
      sqe->flags |= sqe_flags_;
      io_uring_sqe_set_data(sqe, io);
      ++in_flight_;
      return;
    }
    case IoType::unmap:
      io->channel->complete(io, target_.unmap(io->offset_blocks, io->num_blocks));
      return;
    case IoType::write_zeroes:
      io->channel->complete(io, target_.write_zeroes(io->offset_blocks, io->num_blocks));
      return;
    case IoType::reset:
      io->channel->complete(io, Errc::ok);
      return;
  }
}

int UringQueue::poll() {
  // One enter for everything queued since the last poll. On a transient failure (EAGAIN,
  // EBUSY, EINTR) the SQEs stay queued and the next poll submits them.
  if (io_uring_sq_ready(&ring_) != 0) io_uring_submit(&ring_);
  if (in_flight_ == 0) return 0;
  return reap();
}

int UringQueue::reap() {
  int reaped = 0;
  for (;;) {
    io_uring_cqe* cqes[kReapBatch];
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch);
    if (n == 0) {
      // Completions may be waiting as task work that only an enter runs.
      if (reaped != 0) break;
      if (!kernel_has_work() && ++idle_polls_ < kIdlePollsBeforeEnter) break;
      idle_polls_ = 0;
      io_uring_get_events(&ring_);
      n = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch);
      if (n == 0) break;
    }
    for (unsigned i = 0; i < n; ++i) {
      auto* io = static_cast<BdevIo*>(io_uring_cqe_get_data(cqes[i]));
      const int res = cqes[i]->res;
      Errc status = Errc::ok;
      if (res < 0) [[unlikely]] {
        status = errno_errc(-res);
      } else if (io->type != IoType::flush && static_cast<uint64_t>(res) != io->num_blocks * bs_) [[unlikely]] {
        status = Errc::io_error;  // a short transfer inside the device: it shrank under us
      }
      io->channel->complete(io, status);
    }
    io_uring_cq_advance(&ring_, n);
    in_flight_ -= n;
    reaped += static_cast<int>(n);
    if (n < kReapBatch) break;
  }
  if (reaped != 0) idle_polls_ = 0;
  return reaped;
}

class UringBdev final : public Bdev {
 public:
  UringBdev(std::string name, std::unique_ptr<FileTarget> target, unsigned setup_flags)
      : Bdev(std::move(name), target->geometry()), target_(std::move(target)), setup_flags_(setup_flags) {}

  std::string spec() const override { return target_->spec(); }
  Status lock_backing(bool write) override { return target_->lock(write); }
  void unlock_backing() override { target_->unlock(); }

  Result<std::unique_ptr<BackendQueue>> create_queue() override {
    auto queue = std::make_unique<UringQueue>(*target_);
    SLUICE_RETURN_IF_ERROR(queue->init(geometry().queue_depth + BdevChannel::kChildPool, setup_flags_));
    return std::unique_ptr<BackendQueue>(std::move(queue));
  }

 private:
  std::unique_ptr<FileTarget> target_;
  unsigned setup_flags_;
};

}  // namespace

Result<std::shared_ptr<Bdev>> make_uring_bdev(const SpecArgs& args) {
  auto target = FileTarget::open(args, kMaxRingEntries - BdevChannel::kChildPool);
  if (!target.ok()) return target.status();
  // io_uring may be missing, disabled (kernel.io_uring_disabled) or filtered (seccomp): find
  // out now, with a clear message, rather than at the first channel.
  io_uring probe = {};
  int64_t flags = init_ring(&probe, 4, 0);
  if (flags < 0) return errno_status(static_cast<int>(-flags), "uring: io_uring is unavailable");
  io_uring_queue_exit(&probe);
  log::debug("uring {}: ring setup flags {:#x}", args.target, flags);
  return std::shared_ptr<Bdev>(new UringBdev(args.name, std::move(target).value(), static_cast<unsigned>(flags)));
}

}  // namespace sluice::bdev
