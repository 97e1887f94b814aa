// A fake guest for the vhost tests: guest RAM in a memfd (as QEMU's memory-backend-memfd
// shares it) and a split ring in it that the test fills the way a virtio driver would.
#pragma once

#include "target/vhost/virtio_ring.h"
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "target/vhost/guest_memory.h"
#include "target/vhost/virtqueue.h"

namespace sluice::vhost::testing {

// Guest physical addresses start at kGuestBase; the front end's own view at kUserBase.
inline constexpr uint64_t kGuestBase = 0x100000;
inline constexpr uint64_t kUserBase = 0x7f0000000000;

class FakeGuest {
 public:
  // `bytes` of RAM; the ring's tables sit at its start, buffers come from alloc().
  explicit FakeGuest(size_t bytes, uint16_t queue_size = 16) : bytes_(bytes), qsize_(queue_size) {
    fd_ = UniqueFd(memfd_create("fake-guest", MFD_CLOEXEC));
    EXPECT_TRUE(fd_.valid());
    EXPECT_EQ(ftruncate(fd_.get(), static_cast<off_t>(bytes)), 0);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    EXPECT_NE(p, MAP_FAILED);
    ram_ = static_cast<uint8_t*>(p);
    // Descriptor table, then available ring, then the used ring on its own page.
    desc_off_ = 0;
    avail_off_ = 16u * qsize_;
    used_off_ = (avail_off_ + 6 + 2u * qsize_ + 4095) / 4096 * 4096;
    next_free_ = (used_off_ + 6 + 8u * qsize_ + 4095) / 4096 * 4096;
  }
  ~FakeGuest() { munmap(ram_, bytes_); }

  RegionSpec region() const { return RegionSpec{kGuestBase, bytes_, kUserBase, 0}; }
  RingAddrs rings() const { return RingAddrs{kUserBase + desc_off_, kUserBase + avail_off_, kUserBase + used_off_}; }
  // A duplicate of the memfd, as SET_MEM_TABLE would pass it.
  UniqueFd dup_fd() const { return UniqueFd(dup(fd_.get())); }
  // The table mapped into a GuestMemory by its descriptor, as the back end does.
  GuestMemory map() const {
    RegionSpec spec = region();
    UniqueFd fds[1] = {dup_fd()};
    auto m = GuestMemory::map({&spec, 1}, fds);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return m.ok() ? std::move(m.value()) : GuestMemory();
  }

  uint16_t queue_size() const { return qsize_; }
  uint8_t* at(uint64_t gpa) { return ram_ + (gpa - kGuestBase); }
  // Guest-physical bytes for a buffer, page-aligned.
  uint64_t alloc(size_t len) {
    const uint64_t gpa = kGuestBase + next_free_;
    next_free_ += (len + 4095) / 4096 * 4096;
    EXPECT_LE(next_free_, bytes_);
    return gpa;
  }

  vring_desc* desc() { return reinterpret_cast<vring_desc*>(ram_ + desc_off_); }
  vring_avail* avail() { return reinterpret_cast<vring_avail*>(ram_ + avail_off_); }
  vring_used* used() { return reinterpret_cast<vring_used*>(ram_ + used_off_); }
  uint16_t& used_event() { return avail()->ring[qsize_]; }
  uint16_t& avail_event() { return *reinterpret_cast<uint16_t*>(&used()->ring[qsize_]); }

  struct Buf {
    uint64_t gpa;
    uint32_t len;
    bool writable;
  };
  // Writes a chain into descriptors [first, first+bufs.size()) and makes it available.
  uint16_t add_chain(uint16_t first, const std::vector<Buf>& bufs) {
    for (size_t i = 0; i < bufs.size(); ++i) {
      vring_desc& d = desc()[first + i];
      d.addr = bufs[i].gpa;
      d.len = bufs[i].len;
      d.flags = static_cast<uint16_t>((bufs[i].writable ? VRING_DESC_F_WRITE : 0) |
                                      (i + 1 < bufs.size() ? VRING_DESC_F_NEXT : 0));
      d.next = static_cast<uint16_t>(first + i + 1);
    }
    make_available(first);
    return first;
  }
  void make_available(uint16_t head) {
    vring_avail* a = avail();
    a->ring[a->idx % qsize_] = head;
    __atomic_store_n(&a->idx, static_cast<uint16_t>(a->idx + 1), __ATOMIC_RELEASE);
  }
  uint16_t used_idx() { return __atomic_load_n(&used()->idx, __ATOMIC_ACQUIRE); }

  // Another queue's rings at byte `offset` of RAM (zeroed), for multi-queue tests.
  struct Rings {
    RingAddrs addrs;
    uint64_t desc_gpa, avail_gpa, used_gpa;
  };
  Rings second_rings(uint64_t offset) {
    std::memset(ram_ + offset, 0, 3 * 4096);
    const uint64_t desc = offset, avail = offset + 4096, used = offset + 8192;
    return Rings{{kUserBase + desc, kUserBase + avail, kUserBase + used}, kGuestBase + desc, kGuestBase + avail,
                 kGuestBase + used};
  }

 private:
  size_t bytes_;
  uint16_t qsize_;
  UniqueFd fd_;
  uint8_t* ram_ = nullptr;
  uint64_t desc_off_, avail_off_, used_off_, next_free_;
};

}  // namespace sluice::vhost::testing
