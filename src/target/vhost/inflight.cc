// The inflight region (inflight.h).
#include "target/vhost/inflight.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <fmt/format.h>

namespace sluice::vhost {

void InflightQueue::taken(uint16_t head) {
  if (base_ == nullptr || head >= size_) return;
  InflightEntry* e = entry(head);
  e->counter = next_counter_++;
  __atomic_store_n(&e->inflight, 1, __ATOMIC_RELEASE);
}

void InflightQueue::returning(uint16_t head) {
  if (base_ == nullptr || head >= size_) return;
  __atomic_store_n(&header()->last_batch_head, head, __ATOMIC_RELEASE);
}

void InflightQueue::returned(uint16_t head, uint16_t used_idx) {
  if (base_ == nullptr || head >= size_) return;
  __atomic_store_n(&entry(head)->inflight, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&header()->used_idx, used_idx, __ATOMIC_RELEASE);
}

void InflightQueue::settle(uint16_t ring_used_idx) {
  if (base_ == nullptr) return;
  InflightQueueHeader* h = header();
  // The ring is one ahead of the region: the back end died after putting last_batch_head
  // in the used ring and before clearing its mark.
  const uint16_t last = __atomic_load_n(&h->last_batch_head, __ATOMIC_ACQUIRE);
  if (static_cast<uint16_t>(ring_used_idx - __atomic_load_n(&h->used_idx, __ATOMIC_ACQUIRE)) == 1 && last < size_)
    __atomic_store_n(&entry(last)->inflight, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&h->used_idx, ring_used_idx, __ATOMIC_RELEASE);
  h->desc_num = size_;
}

bool InflightQueue::is_inflight(uint16_t head) const {
  return base_ != nullptr && head < size_ && __atomic_load_n(&entry(head)->inflight, __ATOMIC_ACQUIRE) != 0;
}

uint64_t InflightQueue::counter(uint16_t head) const { return is_inflight(head) ? entry(head)->counter : 0; }

InflightRegion::~InflightRegion() { unmap(); }

InflightRegion::InflightRegion(InflightRegion&& o) noexcept { *this = std::move(o); }

InflightRegion& InflightRegion::operator=(InflightRegion&& o) noexcept {
  if (this != &o) {
    unmap();
    fd_ = std::move(o.fd_);
    base_ = std::exchange(o.base_, nullptr);
    map_base_ = std::exchange(o.map_base_, nullptr);
    map_len_ = std::exchange(o.map_len_, 0);
    size_ = std::exchange(o.size_, 0);
    num_queues_ = std::exchange(o.num_queues_, 0);
    queue_size_ = std::exchange(o.queue_size_, 0);
  }
  return *this;
}

void InflightRegion::unmap() {
  if (map_base_ != nullptr) ::munmap(map_base_, map_len_);
  map_base_ = nullptr;
  base_ = nullptr;
}

uint64_t InflightRegion::queue_stride(uint16_t queue_size) {
  const uint64_t bytes = sizeof(InflightQueueHeader) + uint64_t{sizeof(InflightEntry)} * queue_size;
  return (bytes + 63) / 64 * 64;
}

Result<InflightRegion> InflightRegion::create(uint16_t num_queues, uint16_t queue_size) {
  if (num_queues == 0 || queue_size == 0)
    return Status(Errc::invalid_argument, fmt::format("inflight region for {} queues of {}", num_queues, queue_size));
  const uint64_t size = queue_stride(queue_size) * num_queues;  // at most 64 Ki x 1 MiB: no overflow
  UniqueFd fd(::memfd_create("sluice-vhost-inflight", MFD_CLOEXEC));
  if (!fd.valid()) return errno_status(errno, "memfd_create for the inflight region");
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return errno_status(errno, "ftruncate the inflight region");
  return map(std::move(fd), size, 0, num_queues, queue_size);
}

Result<InflightRegion> InflightRegion::map(UniqueFd fd, uint64_t mmap_size, uint64_t mmap_offset, uint16_t num_queues,
                                           uint16_t queue_size) {
  if (num_queues == 0 || queue_size == 0)
    return Status(Errc::invalid_argument, fmt::format("inflight region for {} queues of {}", num_queues, queue_size));
  const uint64_t need = queue_stride(queue_size) * num_queues;
  if (mmap_size < need)
    return Status(Errc::invalid_argument,
                  fmt::format("inflight region of {} bytes, {} queues of {} need {}", mmap_size, num_queues, queue_size, need));
  if (mmap_offset > (1ull << 40) || mmap_size > (1ull << 40))
    return Status(Errc::out_of_range, "inflight region offset or size beyond 1 TiB");
  // Its entries are read and written with aligned atomic accesses.
  if (mmap_offset % 64 != 0)
    return Status(Errc::invalid_argument, fmt::format("inflight region offset {} is not 64-byte aligned", mmap_offset));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status(errno, "fstat the inflight region");
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < mmap_offset + mmap_size)
    return Status(Errc::out_of_range, "the inflight region reaches past the end of its file");
  InflightRegion r;
  r.map_len_ = mmap_offset + mmap_size;
  void* p = ::mmap(nullptr, r.map_len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return errno_status(errno, "mmap the inflight region");
  r.map_base_ = p;
  r.base_ = static_cast<uint8_t*>(p) + mmap_offset;
  r.fd_ = std::move(fd);
  r.size_ = mmap_size;
  r.num_queues_ = num_queues;
  r.queue_size_ = queue_size;
  return r;
}

InflightQueue InflightRegion::queue(uint32_t index, uint16_t ring_size) const {
  if (base_ == nullptr || index >= num_queues_ || ring_size != queue_size_) return {};
  return InflightQueue(base_ + queue_stride(queue_size_) * index, queue_size_);
}

}  // namespace sluice::vhost
