// What a block-device backend implements. Users never include this; they use bdev.h.
//
// A backend is a Bdev subclass (the device: geometry, shared state) plus a BackendQueue per
// channel (the per-thread state: a ring, an aio context, a base-device channel). The generic
// layer validates, splits, counts and pools requests; the backend only moves data.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "bdev/bdev_io.h"
#include "thread/io_channel.h"

namespace sluice::bdev {

class BackendQueue {
 public:
  virtual ~BackendQueue() = default;
  // Starts `io`. The backend reports the outcome later with io->channel->complete(io, status),
  // which it may call from inside submit() (the callback still runs only in poll()).
  // The generic layer never has more than queue_depth() requests outstanding here.
  virtual void submit(BdevIo* io) = 0;
  // Rings the doorbell for everything submitted since the last poll and reaps completions;
  // returns how many it reaped.
  virtual int poll() { return 0; }
  // Runs when a reset request reaches the backend: the channel has drained by then.
  virtual void reset() {}
};

class Bdev : public thread::IoDevice {
 public:
  Bdev(std::string name, Geometry geometry) : name_(std::move(name)), geometry_(geometry) {}
  ~Bdev() override;

  const std::string& name() const { return name_; }
  const Geometry& geometry() const { return geometry_; }
  // The spec this device was made from, e.g. "malloc:64M" (for listings and JSON output).
  virtual std::string spec() const = 0;
  // Runs on the thread that will own the channel.
  virtual Result<std::unique_ptr<BackendQueue>> create_queue() = 0;
  // Hook for hot-remove: virtual bdevs pass it up to their own handles.
  virtual void on_unregistered() {}

  Result<std::unique_ptr<thread::IoChannel>> create_channel() final;

  bool removed() const { return removed_.load(std::memory_order_relaxed); }
  // Statistics over every channel this device ever had (live ones read racily, by design).
  IoStats stats() const;

 protected:
  void set_geometry(const Geometry& g) { geometry_ = g; }

 private:
  friend class BdevChannel;
  friend class Registry;
  std::string name_;
  Geometry geometry_;
  std::atomic<bool> removed_{false};

  mutable std::mutex channels_mu_;  // control path only: channel create/destroy, stats
  std::vector<const BdevChannel*> live_channels_;
  IoStats retired_;  // stats of destroyed channels
};

}  // namespace sluice::bdev
