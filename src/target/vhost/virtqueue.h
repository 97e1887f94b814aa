// A split virtqueue (virtio 1.1, 2.6) as the device side sees it: the guest's descriptor
// table, available ring and used ring, all in guest memory.
//
// Ownership and threads: one thread (the reactor polling the queue) calls everything here.
// The guest writes the descriptor table and the available ring concurrently; indices read
// from them are validated before use, and a guest that breaks the ring's invariants (an
// available index more than the ring size ahead, a head beyond the table) marks the queue
// broken: it then yields nothing more until it is attached again.
//
// Notifications: with VIRTIO_RING_F_EVENT_IDX, need_signal() follows the guest's used_event
// and the queue publishes avail_event so the guest kicks only when we may be asleep; without
// it, the guest's VRING_AVAIL_F_NO_INTERRUPT flag decides. The other way, the device asks the
// guest not to kick while it polls (suppress_kicks) and to kick again before it sleeps
// (enable_kicks), with VRING_USED_F_NO_NOTIFY or, with EVENT_IDX, avail_event.
#pragma once

#include "target/vhost/virtio_ring.h"

#include <cstdint>
#include <span>

#include "base/status.h"
#include "target/vhost/descriptor_chain.h"
#include "target/vhost/guest_memory.h"

namespace sluice::vhost {

// The largest split ring virtio allows.
inline constexpr uint32_t kMaxQueueSize = 32768;

// The rings' addresses in the front end's address space (SET_VRING_ADDR).
struct RingAddrs {
  uint64_t desc = 0;
  uint64_t avail = 0;
  uint64_t used = 0;
};

class SplitQueue {
 public:
  // Points the queue at its rings in `mem` (which must outlive the attachment). `size` must be
  // a power of two up to kMaxQueueSize; each ring must be aligned as virtio requires and lie
  // inside one memory region. `last_avail` is where the device resumes (SET_VRING_BASE); the
  // used index is taken from the ring, where the guest (or our previous life) left it.
  Status attach(const GuestMemory& mem, uint16_t size, const RingAddrs& addrs, uint16_t last_avail, bool event_idx);
  void detach();
  bool attached() const { return desc_ != nullptr; }
  bool broken() const { return broken_; }
  uint16_t size() const { return size_; }

  // The next available head, or false when none (or the queue is broken).
  bool pop(uint16_t* head);
  // The chain of a head pop() returned.
  ChainError walk(uint16_t head, std::span<Segment> out, Chain* chain) const {
    return walk_chain(*mem_, desc_, size_, head, out, chain);
  }
  // Returns a chain to the guest with the number of bytes the device wrote into it.
  void push_used(uint16_t head, uint32_t written);
  // After a batch of push_used(): whether the guest wants an interrupt for it.
  bool need_signal();
  // With EVENT_IDX: asks the guest to kick once it adds past what we have taken.
  void publish_avail_event();

  // Kick suppression (virtio 1.1, 2.6.7.2 and 2.6.10): a queue being polled gains nothing
  // from kicks, which cost the guest an exit each. Without EVENT_IDX this sets
  // VRING_USED_F_NO_NOTIFY; with it, avail_event is left where it is, behind what the guest
  // adds, so the guest does not kick until it wraps around to it.
  void suppress_kicks();
  // Before the device stops polling (sleeps, stops the queue): asks the guest to kick for its
  // next request, then looks at the available index once more, after a full fence. True if
  // requests are there, which the guest may have added before it could see the request to
  // kick: poll for them instead of sleeping. Either the guest sees kicks enabled or we see its
  // request (both sides write, fence, then read).
  bool enable_kicks();
  bool kicks_enabled() const { return kicks_enabled_; }

  // A restarted back end that finds `taken` requests still in flight in the inflight region
  // resumes after them: they were taken from the ring but never returned (used + taken).
  void resume_after_inflight(uint16_t taken) { last_avail_ = static_cast<uint16_t>(used_idx_ + taken); }

  // Where the device resumes: the next available index it will read (GET_VRING_BASE).
  uint16_t last_avail() const { return last_avail_; }
  uint16_t used_idx() const { return used_idx_; }

 private:
  const GuestMemory* mem_ = nullptr;
  vring_desc* desc_ = nullptr;
  vring_avail* avail_ = nullptr;
  vring_used* used_ = nullptr;
  uint16_t size_ = 0;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;  // used_idx_ when need_signal() last ran
  bool event_idx_ = false;
  bool broken_ = false;
  // What we last asked of the guest; enable_kicks() writes the ring whatever this says, since
  // a previous back end may have left kicks suppressed.
  bool kicks_enabled_ = true;
};

}  // namespace sluice::vhost
