// IoDevice and IoChannel: per-thread, per-device contexts (SPDK's io_channel, without a
// central thread).
//
// Any thread may own channels: a reactor polls its channels from its loop; a foreign thread
// (a RocksDB thread) polls its own while it waits. A channel is created lazily on the first
// get_io_channel() from a thread, reference counted, and destroyed on that thread by the
// last put_io_channel(). Nothing about a channel is shared with other threads, so its data
// path takes no lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>

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
  // True while work is in flight; a reactor stays awake (spinning) while any channel says so.
  virtual bool has_outstanding() const { return false; }

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
// How many channels the calling thread owns (for leak checks at shutdown).
size_t thread_channel_count();

}  // namespace sluice::thread
