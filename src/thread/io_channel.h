// IoDevice and IoChannel: per-thread, per-device contexts (SPDK's io_channel, without a
// central thread).
//
// Any thread may own channels: a reactor polls its channels from its loop; a foreign thread
// (a RocksDB thread) polls its own while it waits. A channel is created lazily on the first
// get_io_channel() from a thread, reference counted, and destroyed on that thread by the
// last put_io_channel(). Nothing about a channel is shared with other threads, so its data
// path takes no lock.
#pragma once

#include <poll.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "base/status.h"

namespace sluice::thread {

class IoChannel;

class IoDevice {
 public:
  IoDevice() = default;
  IoDevice(const IoDevice&) = delete;
  IoDevice& operator=(const IoDevice&) = delete;
  virtual ~IoDevice() = default;

  // Runs on the thread that will own the channel. May fail (e.g. no io_uring available).
  virtual Result<std::unique_ptr<IoChannel>> create_channel() = 0;

  // Live channels across all threads; a device must not be destroyed while any exist.
  size_t channel_count() const { return channels_.load(std::memory_order_acquire); }

 private:
  friend class IoChannel;
  std::atomic<size_t> channels_{0};
};

class IoChannel {
 public:
  explicit IoChannel(IoDevice& device);
  IoChannel(const IoChannel&) = delete;
  IoChannel& operator=(const IoChannel&) = delete;
  virtual ~IoChannel();

  // Reaps completions and runs their callbacks. Returns how many events it handled (0 when
  // idle). Only the owning thread calls it.
  virtual int poll() = 0;
  // True while work is in flight; a reactor keeps polling while any channel says so, unless
  // every such channel can wake it (below).
  virtual bool has_outstanding() const { return false; }
  // True while the channel waits for work that others start (sockets a peer may send on at
  // any time): nothing is in flight, so the reactor spins its idle grace before it sleeps, as
  // a peer's next request usually comes soon; but the channel is armed for every sleep, so
  // that the peer wakes it. (Work in flight instead makes it sleep after AppOptions::io_spin.)
  virtual bool waits_for_peers() const { return false; }
  // Asked only while waits_for_peers(): how long, once the reactor has nothing to do, the
  // peers' next request is worth spinning for, at most `grace_ns` (the reactor's idle grace).
  // The grace pays off for a peer that sends again within it; a peer that is known to be
  // slower (a guest under emulation) only costs its reactor a busy core, so its channel
  // answers less and the reactor sleeps sooner.
  virtual uint64_t peer_spin_ns(uint64_t grace_ns) const { return grace_ns; }

  // Sleeping instead of spinning while work is in flight (docs/design.md rule 5). A channel that
  // can wake its owner returns a descriptor that turns readable (POLLIN) once a completion
  // is ready for poll(), but only while armed: from a prepare_sleep() that returned true to
  // the matching finish_sleep(). -1 (the default): the channel cannot wake its owner, which
  // must keep polling while the channel has work in flight.
  virtual int wake_fd() const { return -1; }
  // Arms wake_fd(). False if something is ready for poll() already, or the channel cannot
  // wake its owner: poll instead of sleeping. Owning thread only, never inside poll().
  virtual bool prepare_sleep() { return false; }
  // Disarms after the sleep; `woken`: wake_fd() was found readable.
  virtual void finish_sleep(bool woken) { (void)woken; }
  // The cheaper sleep of a thread whose only work in flight is on this channel: block in
  // the kernel until something is ready for poll() or timeout_ns passed, in one system call
  // that also hands the kernel what is queued (io_uring's submit-and-wait), where the
  // wake_fd() route takes a poll(2), an eventfd read and another enter to collect the
  // completion. False: the channel cannot, or nothing it holds would end the wait before the
  // timeout (then use wake_fd()). Owning thread only, with work in flight, never inside poll().
  virtual bool wait_in_kernel(uint64_t timeout_ns) {
    (void)timeout_ns;
    return false;
  }

  IoDevice& device() const { return device_; }
  std::thread::id owner() const { return owner_; }
  uint32_t refs() const { return refs_; }

 private:
  friend Result<IoChannel*> get_io_channel(IoDevice& device);
  friend Status put_io_channel(IoChannel* channel);
  IoDevice& device_;
  std::thread::id owner_;
  uint32_t refs_ = 0;
};

// The calling thread's channel to `device`, created on first use; every successful call must
// be matched by put_io_channel() on the same thread.
Result<IoChannel*> get_io_channel(IoDevice& device);
// Drops a reference; the last one destroys the channel. Refused from any other thread.
Status put_io_channel(IoChannel* channel);

// Polls every channel the calling thread owns; returns the total events handled.
int poll_thread_channels();
// True if any channel of the calling thread has work in flight.
bool thread_channels_outstanding();

// What the calling thread's channels allow a thread that has nothing else to do.
enum class ChannelsWait : uint8_t {
  idle,       // no work in flight
  can_sleep,  // work in flight, and every channel holding some can wake the thread
  must_poll,  // work in flight on a channel that cannot wake the thread
};
struct ChannelsIdle {
  ChannelsWait wait = ChannelsWait::idle;
  // How long a thread with nothing in flight spins before it sleeps: the longest that its
  // channels waiting for peers ask for (IoChannel::peer_spin_ns), or `grace_ns` when none
  // waits for peers (the grace also covers pollers, which cannot say what they wait for).
  // Left at `grace_ns` with must_poll, which never sleeps.
  uint64_t spin_ns = 0;
};
// Both in one walk of the calling thread's channels: a reactor asks on every idle pass.
ChannelsIdle thread_channels_idle(uint64_t grace_ns);

// Arms every channel of the calling thread that has work in flight or waits for peers and
// appends their wake descriptors to `fds` (events = POLLIN). False, with nothing left armed, if one of them has
// something ready or cannot wake the thread: poll instead. After a true, sleep on `fds`
// (ppoll), then call disarm_thread_channels() with the same array and its revents.
bool arm_thread_channels(std::vector<pollfd>& fds);
void disarm_thread_channels(const std::vector<pollfd>& fds);

// The sleep of a thread that is not a reactor: waits up to timeout_ns for a channel to have
// a completion ready (in the kernel when a single channel has work in flight and can, else
// armed, in ppoll). Returns false at once, without sleeping, when nothing is in flight or
// arm_thread_channels() refuses.
bool sleep_on_thread_channels(uint64_t timeout_ns);
// Only the first of those: true if the calling thread has work in flight on exactly one
// channel and waited for it in the kernel (IoChannel::wait_in_kernel).
bool wait_in_kernel_on_thread_channels(uint64_t timeout_ns);
// Only the second, the armed sleep: for a caller that has just tried the first, so that the
// channels are not searched for a lone one twice.
bool sleep_armed_on_thread_channels(uint64_t timeout_ns);
// How many channels the calling thread owns (for leak checks at shutdown).
size_t thread_channel_count();

}  // namespace sluice::thread
