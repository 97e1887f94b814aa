// The inflight region (vhost-user INFLIGHT_SHMFD): shared memory, kept by the front end across
// a back-end restart, in which the back end marks every request it has taken from a ring and
// not yet returned, so that a restarted back end can finish them.
//
// The front end only stores the descriptor (GET_INFLIGHT_FD makes it, SET_INFLIGHT_FD hands
// it back after a reconnect); the layout is ours. Per queue, at a 64-byte aligned stride:
// a 16-byte header (features, version, desc_num, last_batch_head, used_idx, as QEMU's
// libvhost-user lays it out) and one 16-byte entry per descriptor (inflight flag, next,
// counter). last_batch_head is the request being returned, used_idx the used ring's index
// once it was.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "base/unique_fd.h"

namespace sluice::vhost {

struct InflightEntry {
  uint8_t inflight;
  uint8_t padding[5];
  uint16_t next;
  uint64_t counter;  // order taken, so a restart resubmits in the same order
};
static_assert(sizeof(InflightEntry) == 16);

struct InflightQueueHeader {
  uint64_t features;
  uint16_t version;
  uint16_t desc_num;
  uint16_t last_batch_head;
  uint16_t used_idx;
};
static_assert(sizeof(InflightQueueHeader) == 16);

// One queue's part of the region. Same thread as its queue.
class InflightQueue {
 public:
  InflightQueue() = default;
  InflightQueue(uint8_t* base, uint16_t queue_size) : base_(base), size_(queue_size) {}
  bool valid() const { return base_ != nullptr; }
  uint16_t size() const { return size_; }
  void taken(uint16_t head);
  // Returning a request is two steps around the used-ring update, so that a back end that
  // dies between them leaves enough to tell: returning(head) names it before the ring shows
  // it used; returned(head, used_idx) clears its mark and records the ring's new index.
  void returning(uint16_t head);
  void returned(uint16_t head, uint16_t used_idx);
  bool is_inflight(uint16_t head) const;
  uint64_t counter(uint16_t head) const;
  // At a restart, with the ring's used index: a request a previous back end had returned to
  // the ring but not yet cleared here (it died in between) is cleared now, then the header
  // is brought up to date. What is still marked afterwards was never returned.
  void settle(uint16_t ring_used_idx);

 private:
  InflightQueueHeader* header() const { return reinterpret_cast<InflightQueueHeader*>(base_); }
  InflightEntry* entry(uint16_t head) const {
    return reinterpret_cast<InflightEntry*>(base_ + sizeof(InflightQueueHeader)) + head;
  }
  uint8_t* base_ = nullptr;
  uint16_t size_ = 0;
  uint64_t next_counter_ = 1;
};

class InflightRegion {
 public:
  InflightRegion() = default;
  ~InflightRegion();
  InflightRegion(InflightRegion&& o) noexcept;
  InflightRegion& operator=(InflightRegion&& o) noexcept;

  // Bytes one queue of `queue_size` descriptors takes.
  static uint64_t queue_stride(uint16_t queue_size);
  // A new zeroed region (a memfd) for GET_INFLIGHT_FD.
  static Result<InflightRegion> create(uint16_t num_queues, uint16_t queue_size);
  // The region SET_INFLIGHT_FD hands back: refused unless `mmap_size` covers every queue.
  static Result<InflightRegion> map(UniqueFd fd, uint64_t mmap_size, uint64_t mmap_offset, uint16_t num_queues,
                                    uint16_t queue_size);

  bool valid() const { return base_ != nullptr; }
  int fd() const { return fd_.get(); }
  uint64_t size() const { return size_; }
  uint16_t num_queues() const { return num_queues_; }
  // Queue `index`'s part (invalid beyond num_queues or for a ring of another size).
  InflightQueue queue(uint32_t index, uint16_t ring_size) const;

 private:
  void unmap();
  UniqueFd fd_;
  uint8_t* base_ = nullptr;  // where queue 0 starts
  void* map_base_ = nullptr;
  size_t map_len_ = 0;
  uint64_t size_ = 0;
  uint16_t num_queues_ = 0;
  uint16_t queue_size_ = 0;
};

}  // namespace sluice::vhost
