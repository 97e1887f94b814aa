// What a vhost-user session serves: one virtio device's side of its queues (virtio-blk in
// blk_device.h). The session owns the protocol and the rings' setup; the device consumes the
// started rings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "base/status.h"
#include "target/vhost/inflight.h"
#include "target/vhost/virtqueue.h"

namespace sluice::vhost {

// A started ring as the device sees it. Every pointer, and what it points to, stays valid and
// unchanged until the device's stop_queue() has called its done(): a new memory table, kick
// or call descriptor stops the ring first. The device may run the ring on another reactor.
struct QueueContext {
  uint32_t index = 0;
  SplitQueue* queue = nullptr;
  const int* call_fd = nullptr;
  int kick_fd = -1;           // -1: the front end does not kick (polling)
  InflightQueue inflight;     // invalid without an inflight region
};

class Device {
 public:
  virtual ~Device() = default;
  // The virtio feature bits offered (the device's and the ring's, VERSION_1 included).
  virtual uint64_t features() const = 0;
  // The front end's choice, before any ring starts.
  virtual void set_features(uint64_t features) = 0;
  virtual uint32_t num_queues() const = 0;
  // The device's configuration space (GET_CONFIG reads it at any offset).
  virtual std::span<const uint8_t> config() const = 0;
  // Starts serving a ring on the calling thread.
  virtual Status start_queue(const QueueContext& ctx) = 0;
  // Stops taking requests from ring `index`; done() runs on the same thread, at once or once
  // its last request in flight has been returned to the guest.
  virtual void stop_queue(uint32_t index, std::function<void()> done) = 0;
};

}  // namespace sluice::vhost
