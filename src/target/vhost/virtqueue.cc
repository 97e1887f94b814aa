// The split virtqueue (virtqueue.h).
#include "target/vhost/virtqueue.h"

#include <fmt/format.h>

#include "base/barrier.h"
#include "base/log.h"

namespace sluice::vhost {
namespace {

// The guest writes these rings; every access to a shared index is a single atomic one.
uint16_t load_u16(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_u16(uint16_t* p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

Result<uint8_t*> ring_at(const GuestMemory& mem, uint64_t addr, uint64_t len, uint64_t align, const char* what) {
  if (addr % align != 0) return Status(Errc::invalid_argument, fmt::format("{} ring {:#x} is not {}-byte aligned", what, addr, align));
  auto r = mem.translate_user(addr, len);
  if (!r.ok()) return Status(Errc::out_of_range, fmt::format("{} ring: {}", what, r.status().message()));
  // What we access is the host address: a region whose user address and file offset
  // disagree in alignment would put an aligned ring at a misaligned host address.
  if (reinterpret_cast<uintptr_t>(r->data()) % align != 0)
    return Status(Errc::invalid_argument, fmt::format("{} ring {:#x} lands misaligned in its memory region", what, addr));
  return r->data();
}

}  // namespace

Status SplitQueue::attach(const GuestMemory& mem, uint16_t size, const RingAddrs& addrs, uint16_t last_avail,
                          bool event_idx) {
  detach();
  if (size == 0 || (size & (size - 1)) != 0)
    return Status(Errc::invalid_argument, fmt::format("queue size {} is not a power of two", size));
  // Layouts of virtio 1.1 2.6: the event fields sit after each ring.
  auto d = ring_at(mem, addrs.desc, uint64_t{16} * size, 16, "descriptor");
  if (!d.ok()) return d.status();
  auto a = ring_at(mem, addrs.avail, 4 + uint64_t{2} * size + 2, 2, "available");
  if (!a.ok()) return a.status();
  auto u = ring_at(mem, addrs.used, 4 + uint64_t{8} * size + 2, 4, "used");
  if (!u.ok()) return u.status();
  mem_ = &mem;
  desc_ = reinterpret_cast<vring_desc*>(*d);
  avail_ = reinterpret_cast<vring_avail*>(*a);
  used_ = reinterpret_cast<vring_used*>(*u);
  size_ = size;
  last_avail_ = last_avail;
  used_idx_ = load_u16(&used_->idx);
  signalled_used_ = used_idx_;
  event_idx_ = event_idx;
  broken_ = false;
  kicks_enabled_ = true;  // not yet written: the queue's start calls enable_kicks()
  return Status::Ok();
}

void SplitQueue::detach() {
  mem_ = nullptr;
  desc_ = nullptr;
  avail_ = nullptr;
  used_ = nullptr;
}

bool SplitQueue::pop(uint16_t* head) {
  if (desc_ == nullptr || broken_) return false;
  const uint16_t avail_idx = load_u16(&avail_->idx);  // acquire: the ring entries it covers are visible
  const uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_);
  if (pending == 0) return false;
  if (pending > size_) {
    broken_ = true;
    log::warn("vhost: available index {} is {} ahead of {} on a {}-entry ring; queue marked broken", avail_idx,
              pending, last_avail_, size_);
    return false;
  }
  const uint16_t h = load_u16(&avail_->ring[last_avail_ & (size_ - 1)]);
  if (h >= size_) {
    broken_ = true;
    log::warn("vhost: available head {} beyond a {}-entry table; queue marked broken", h, size_);
    return false;
  }
  ++last_avail_;
  *head = h;
  return true;
}

void SplitQueue::push_used(uint16_t head, uint32_t written) {
  if (used_ == nullptr) return;
  vring_used_elem* e = &used_->ring[used_idx_ & (size_ - 1)];
  __atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
  __atomic_store_n(&e->len, written, __ATOMIC_RELAXED);
  ++used_idx_;
  store_u16(&used_->idx, used_idx_);  // release: the element is visible before the index
}

bool SplitQueue::need_signal() {
  if (used_ == nullptr) return false;
  const uint16_t old = signalled_used_;
  signalled_used_ = used_idx_;
  if (old == used_idx_) return false;
  // The new used index must be visible before we read what the guest asked for, or we may
  // miss the guest re-enabling interrupts just after our read (virtio 1.1, 2.6.7.2).
  full_barrier();
  if (event_idx_) {
    const uint16_t used_event = load_u16(&avail_->ring[size_]);
    return vring_need_event(used_event, used_idx_, old);
  }
  return (load_u16(&avail_->flags) & VRING_AVAIL_F_NO_INTERRUPT) == 0;
}

void SplitQueue::publish_avail_event() {
  if (used_ == nullptr || !event_idx_) return;
  store_u16(reinterpret_cast<uint16_t*>(&used_->ring[size_]), last_avail_);
  // The next look at the available index comes after the guest can see this.
  full_barrier();
}

void SplitQueue::suppress_kicks() {
  if (used_ == nullptr || !kicks_enabled_) return;
  kicks_enabled_ = false;
  if (!event_idx_) store_u16(&used_->flags, VRING_USED_F_NO_NOTIFY);
}

bool SplitQueue::enable_kicks() {
  if (used_ == nullptr) return false;
  kicks_enabled_ = true;
  if (event_idx_)
    store_u16(reinterpret_cast<uint16_t*>(&used_->ring[size_]), last_avail_);
  else
    store_u16(&used_->flags, 0);
  // Our write must be visible before we read the guest's index, as the guest's index is
  // before it reads our flag: a store followed by a load needs a full fence on x86 too.
  full_barrier();
  return !broken_ && load_u16(&avail_->idx) != last_avail_;
}

}  // namespace sluice::vhost
