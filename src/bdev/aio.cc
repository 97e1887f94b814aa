// The aio bdev: a file or block device driven through Linux native AIO (libaio) with
// O_DIRECT.
//
// Each channel has its own io_context, deep enough for everything the channel can have
// outstanding. submit() fills the iocb kept in the request itself (BdevIo::driver) and
// queues it; poll() hands the queue to the kernel with one io_submit and reaps completions
// straight from the context's completion ring in user space (as SPDK and fio do), with no
// system call; io_getevents is the fallback for a ring layout it does not know.
//
// Flush is IOCB_CMD_FDSYNC; where the file system refuses it (EINVAL), this channel
// switches to a synchronous fdatasync(). Unmap and write_zeroes run synchronously in
// submit() (FileTarget); they are rare.
//
// Completion wake-up: every iocb carries IOCB_FLAG_RESFD with the queue's eventfd, which the
// kernel signals after it posts the event, so that the owner can sleep (poll(2) on it)
// instead of spinning while requests are in flight. AIO cannot switch the signal off while
// the owner polls; it costs the kernel an eventfd_signal per request.
#include <libaio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "bdev/channel.h"
#include "bdev/file_target.h"
#include "bdev/modules.h"

namespace sluice::bdev {
namespace {

constexpr uint32_t kMaxQueueDepth = 65536;  // fs.aio-max-nr's default for the whole system
constexpr int kAioReapBatch = 64;

// The completion ring the kernel maps at an io_context's address (fs/aio.c).
struct AioRing {
  unsigned id;
  unsigned nr;  // events in the ring
  unsigned head;
  unsigned tail;
  unsigned magic;
  unsigned compat_features;
  unsigned incompat_features;
  unsigned header_length;
  // The events follow the header.
  io_event* events() { return reinterpret_cast<io_event*>(this + 1); }
};
static_assert(sizeof(AioRing) == 32);
constexpr unsigned kAioRingMagic = 0xa10a10a1;

// An io_context for `depth` requests, with a clear message when the kernel refuses one.
Result<io_context_t> setup_context(uint32_t depth) {
  io_context_t ctx = nullptr;
  int r = io_setup(static_cast<int>(depth), &ctx);
  if (r < 0)
    return errno_status(-r, fmt::format("aio: cannot create an I/O context for {} requests{}", depth,
                                        r == -EAGAIN ? " (see fs.aio-max-nr)" : ""));
  return ctx;
}

class AioQueue final : public BackendQueue {
 public:
  // Takes ownership of `ctx`, made for `depth` requests.
  AioQueue(const FileTarget& target, io_context_t ctx, uint32_t depth)
      : target_(target), fd_(target.fd()), bs_(target.geometry().block_size), ctx_(ctx), queued_(depth) {
    auto* ring = reinterpret_cast<AioRing*>(ctx_);
    if (ring->magic == kAioRingMagic && ring->incompat_features == 0) ring_ = ring;
    // Without the ring in user space, prepare_sleep() could not look for ready events.
    if (ring_ != nullptr) wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }
  ~AioQueue() override {
    io_destroy(ctx_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  void submit(BdevIo* io) override {
    iocb* cb = io->driver_ctx<iocb>();
    const auto offset = static_cast<long long>(io->offset_blocks * bs_);
    switch (io->type) {
      case IoType::read:
        if (io->iovcnt == 1) io_prep_pread(cb, fd_, io->iovs[0].iov_base, io->iovs[0].iov_len, offset);
        else io_prep_preadv(cb, fd_, io->iovs, io->iovcnt, offset);
        break;
      case IoType::write:
        if (io->iovcnt == 1) io_prep_pwrite(cb, fd_, io->iovs[0].iov_base, io->iovs[0].iov_len, offset);
        else io_prep_pwritev(cb, fd_, io->iovs, io->iovcnt, offset);
        break;
      case IoType::flush:
        if (!fdsync_ok_) {
          io->channel->complete(io, target_.flush());
          return;
        }
        io_prep_fdsync(cb, fd_);
        break;
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
    cb->data = io;
    if (wake_fd_ >= 0) io_set_eventfd(cb, wake_fd_);
    queued_[nqueued_++] = cb;
  }

  int poll() override {
    if (nqueued_ != 0) submit_queued();
    if (in_flight_ == 0) return 0;
    return ring_ != nullptr ? reap_ring() : reap_syscall();
  }

  int wake_fd() const override { return wake_fd_; }

  bool prepare_sleep() override {
    if (wake_fd_ < 0 || nqueued_ != 0) return false;  // submissions wait for poll()
    if (signalled_) {
      // Reset the counter, then look at the ring: the kernel posts an event before it
      // signals, so one that lands after this look signals the reset counter and wakes us.
      uint64_t count;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
      signalled_ = false;
    }
    return __atomic_load_n(&ring_->tail, __ATOMIC_ACQUIRE) == ring_->head;
  }

  void finish_sleep(bool woken) override { signalled_ |= woken; }

 private:
  void submit_queued();
  void complete(const io_event& ev);
  int reap_ring();
  int reap_syscall();

  const FileTarget& target_;
  const int fd_;
  const uint32_t bs_;
  io_context_t ctx_;
  AioRing* ring_ = nullptr;      // null: reap with io_getevents
  std::vector<iocb*> queued_;    // prepared since the last poll; sized for every request
  size_t nqueued_ = 0;
  uint32_t in_flight_ = 0;       // in the kernel
  bool fdsync_ok_ = true;
  int wake_fd_ = -1;             // eventfd every iocb signals; -1: none, the owner polls
  bool signalled_ = false;       // wake_fd_'s counter may be non-zero: events were reaped since its reset
};

void AioQueue::submit_queued() {
  size_t done = 0;
  while (done < nqueued_) {
    int r = io_submit(ctx_, static_cast<long>(nqueued_ - done), queued_.data() + done);
    if (r > 0) {
      done += static_cast<size_t>(r);
      in_flight_ += static_cast<uint32_t>(r);
      continue;
    }
    if (r == 0 || r == -EAGAIN || r == -EINTR) break;  // transient: the rest goes at the next poll
    // The kernel refused the first iocb outright.
    iocb* cb = queued_[done++];
    auto* io = static_cast<BdevIo*>(cb->data);
    if (cb->aio_lio_opcode == IO_CMD_FDSYNC && r == -EINVAL) {
      fdsync_ok_ = false;  // this file system cannot fsync asynchronously
      io->channel->complete(io, target_.flush());
    } else {
      io->channel->complete(io, errno_errc(-r));
    }
  }
  std::copy(queued_.begin() + static_cast<ptrdiff_t>(done), queued_.begin() + static_cast<ptrdiff_t>(nqueued_),
            queued_.begin());
  nqueued_ -= done;
}

inline void AioQueue::complete(const io_event& ev) {
  auto* io = static_cast<BdevIo*>(ev.data);
  const auto res = static_cast<long>(ev.res);
  Errc status = Errc::ok;
  if (res < 0) [[unlikely]] {
    status = errno_errc(static_cast<int>(-res));
  } else if (io->type != IoType::flush && static_cast<uint64_t>(res) != io->num_blocks * bs_) [[unlikely]] {
    status = Errc::io_error;  // a short transfer inside the device: it shrank under us
  }
  io->channel->complete(io, status);
}

int AioQueue::reap_ring() {
  // Only this thread consumes events, so head is ours; the kernel publishes tail.
  const unsigned nr = ring_->nr;
  unsigned head = ring_->head;
  const unsigned tail = __atomic_load_n(&ring_->tail, __ATOMIC_ACQUIRE);
  if (head == tail) return 0;
  int reaped = 0;
  while (head != tail) {
    complete(ring_->events()[head]);
    head = head + 1 == nr ? 0 : head + 1;
    ++reaped;
  }
  __atomic_store_n(&ring_->head, head, __ATOMIC_RELEASE);
  in_flight_ -= static_cast<uint32_t>(reaped);
  signalled_ = true;  // each reaped event signalled the eventfd
  return reaped;
}

int AioQueue::reap_syscall() {
  io_event events[kAioReapBatch];
  timespec zero = {0, 0};
  int reaped = 0;
  for (;;) {
    int n = io_getevents(ctx_, 0, kAioReapBatch, events, &zero);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) complete(events[i]);
    in_flight_ -= static_cast<uint32_t>(n);
    reaped += n;
    if (n < kAioReapBatch) break;
  }
  return reaped;
}

// A context outlives the thread that made it, so the one made to check that AIO works
// serves the first channel: io_destroy costs an RCU grace period (tens of milliseconds).
class AioBdev final : public Bdev {
 public:
  AioBdev(std::string name, std::unique_ptr<FileTarget> target, io_context_t spare)
      : Bdev(std::move(name), target->geometry()), target_(std::move(target)), spare_(spare) {}
  ~AioBdev() override {
    if (io_context_t ctx = spare_.exchange(nullptr)) io_destroy(ctx);
  }

  std::string spec() const override { return target_->spec(); }
  Status lock_backing(bool write) override { return target_->lock(write); }
  void unlock_backing() override { target_->unlock(); }

  Result<std::unique_ptr<BackendQueue>> create_queue() override {
    const uint32_t depth = geometry().queue_depth + BdevChannel::kChildPool;
    io_context_t ctx = spare_.exchange(nullptr);
    if (ctx == nullptr) {
      auto made = setup_context(depth);
      if (!made.ok()) return made.status();
      ctx = *made;
    }
    return std::unique_ptr<BackendQueue>(new AioQueue(*target_, ctx, depth));
  }

 private:
  std::unique_ptr<FileTarget> target_;
  std::atomic<io_context_t> spare_;
};

}  // namespace

Result<std::shared_ptr<Bdev>> make_aio_bdev(const SpecArgs& args) {
  auto target = FileTarget::open(args, kMaxQueueDepth - BdevChannel::kChildPool);
  if (!target.ok()) return target.status();
  // AIO may be unavailable or its system-wide budget (fs.aio-max-nr) spent: find out now.
  auto ctx = setup_context((*target)->geometry().queue_depth + BdevChannel::kChildPool);
  if (!ctx.ok()) return ctx.status();
  return std::shared_ptr<Bdev>(new AioBdev(args.name, std::move(target).value(), *ctx));
}

}  // namespace sluice::bdev
