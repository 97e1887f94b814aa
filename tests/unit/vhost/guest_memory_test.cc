// GuestMemory: mapping regions from descriptors and translating guest and front-end
// addresses with every bound checked.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "fake_guest.h"
#include "target/vhost/guest_memory.h"

namespace sluice::vhost {
namespace {

using testing::FakeGuest;
using testing::kGuestBase;
using testing::kUserBase;

TEST(GuestMemory, MappedRegionSharesTheGuestsBytes) {
  FakeGuest guest(64 << 10);
  GuestMemory mem = guest.map();
  ASSERT_EQ(mem.regions(), 1u);
  std::memcpy(guest.at(kGuestBase + 100), "hello", 5);
  auto s = mem.translate(kGuestBase + 100, 5);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(std::memcmp(s->data(), "hello", 5), 0);
  // Writes through the mapping reach the guest (MAP_SHARED).
  std::memcpy(s->data(), "HELLO", 5);
  EXPECT_EQ(std::memcmp(guest.at(kGuestBase + 100), "HELLO", 5), 0);
  auto u = mem.translate_user(kUserBase + 100, 5);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->data(), s->data());
}

TEST(GuestMemory, RangesMustLieInsideOneRegion) {
  FakeGuest guest(64 << 10);
  GuestMemory mem = guest.map();
  const uint64_t size = 64 << 10;
  EXPECT_TRUE(mem.translate(kGuestBase, size).ok());
  EXPECT_TRUE(mem.translate(kGuestBase + size - 1, 1).ok());
  EXPECT_EQ(mem.translate(kGuestBase + size - 1, 2).status().code(), Errc::out_of_range);
  EXPECT_EQ(mem.translate(kGuestBase - 1, 1).status().code(), Errc::out_of_range);
  EXPECT_EQ(mem.translate(kGuestBase + size, 1).status().code(), Errc::out_of_range);
  // Lengths and addresses that would wrap a naive addr + len check.
  EXPECT_EQ(mem.host_range(kGuestBase + 8, UINT64_MAX), nullptr);
  EXPECT_EQ(mem.host_range(UINT64_MAX, 2), nullptr);
  EXPECT_EQ(mem.host_range(kGuestBase + 8, UINT64_MAX - kGuestBase), nullptr);
  // Guest and front-end addresses are different spaces.
  EXPECT_FALSE(mem.translate(kUserBase, 1).ok());
  EXPECT_FALSE(mem.translate_user(kGuestBase, 1).ok());
}

TEST(GuestMemory, TranslatesAcrossSeveralRegions) {
  static uint8_t a[4096], b[4096];
  RegionSpec specs[2] = {{0x0, sizeof a, 0x1000, 0}, {0x100000, sizeof b, 0x9000, 0}};
  uint8_t* host[2] = {a, b};
  auto mem = GuestMemory::borrow(specs, host);
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(mem->host_range(0x10, 4), a + 0x10);
  EXPECT_EQ(mem->host_range(0x100010, 4), b + 0x10);
  // Contiguous in neither space: a range spanning the gap is refused.
  EXPECT_EQ(mem->host_range(0xff0, 0x20), nullptr);
  EXPECT_EQ(mem->translate_user(0x9010, 4)->data(), b + 0x10);
}

TEST(GuestMemory, RefusesBadTables) {
  static uint8_t a[4096];
  uint8_t* host[GuestMemory::kMaxRegions + 1] = {};
  for (auto*& h : host) h = a;
  RegionSpec overlap[2] = {{0x0, 0x2000, 0, 0}, {0x1000, 0x1000, 0x10000, 0}};
  EXPECT_EQ(GuestMemory::borrow(overlap, {host, 2}).status().code(), Errc::invalid_argument);
  RegionSpec empty[1] = {{0x0, 0, 0, 0}};
  EXPECT_EQ(GuestMemory::borrow(empty, {host, 1}).status().code(), Errc::invalid_argument);
  RegionSpec wraps[1] = {{UINT64_MAX - 10, 0x1000, 0, 0}};
  EXPECT_EQ(GuestMemory::borrow(wraps, {host, 1}).status().code(), Errc::invalid_argument);
  RegionSpec many[GuestMemory::kMaxRegions + 1];
  for (size_t i = 0; i < std::size(many); ++i) many[i] = {i * 0x1000, 0x1000, i * 0x1000, 0};
  EXPECT_EQ(GuestMemory::borrow(many, host).status().code(), Errc::invalid_argument);
  EXPECT_EQ(GuestMemory::borrow({}, {}).status().code(), Errc::invalid_argument);
}

TEST(GuestMemory, RefusesARegionPastTheEndOfItsFile) {
  FakeGuest guest(64 << 10);
  RegionSpec spec = guest.region();
  spec.size = 128 << 10;  // touching the second half would raise SIGBUS
  UniqueFd fds[1] = {guest.dup_fd()};
  auto m = GuestMemory::map({&spec, 1}, fds);
  EXPECT_EQ(m.status().code(), Errc::out_of_range) << m.status().to_string();
  spec = guest.region();
  spec.mmap_offset = 4096;  // the same size from a later offset also runs past the end
  UniqueFd fds2[1] = {guest.dup_fd()};
  EXPECT_EQ(GuestMemory::map({&spec, 1}, fds2).status().code(), Errc::out_of_range);
  // One descriptor per region.
  spec = guest.region();
  EXPECT_EQ(GuestMemory::map({&spec, 1}, {}).status().code(), Errc::invalid_argument);
}

TEST(GuestMemory, MmapOffsetShiftsTheRegion) {
  FakeGuest guest(64 << 10);
  RegionSpec spec{0x0, 32 << 10, 0x5000, 100};  // not page aligned
  UniqueFd fds[1] = {guest.dup_fd()};
  auto m = GuestMemory::map({&spec, 1}, fds);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_FALSE(fds[0].valid());  // closed once mapped
  guest.at(kGuestBase + 100)[0] = 0x5a;
  EXPECT_EQ(m->host_range(0, 1)[0], 0x5a);
}

TEST(GuestMemory, ReplacementUnmapsTheOldTable) {
  FakeGuest guest(64 << 10);
  GuestMemory mem = guest.map();
  uint8_t* old = mem.host_range(kGuestBase, 1);
  ASSERT_NE(old, nullptr);
  mem = GuestMemory();
  EXPECT_TRUE(mem.empty());
  // The old mapping is gone: mincore on an unmapped page fails with ENOMEM.
  unsigned char vec;
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(old) & ~uintptr_t{4095});
  EXPECT_EQ(mincore(page, 4096, &vec), -1);
  EXPECT_EQ(errno, ENOMEM);
}

}  // namespace
}  // namespace sluice::vhost
