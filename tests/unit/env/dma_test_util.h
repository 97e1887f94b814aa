// Fixtures for the DMA memory tests.
//
// Every test starts and ends with an empty pool. Tests that reserve hugepages change a
// system setting, so they hold an exclusive lock across processes (other test runs, other
// build trees) while they do, and put the old value back; ordinary tests hold the lock
// shared, so they never map (and steal) hugepages another run has just reserved.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "env/env.h"

namespace sluice::env::testing {

inline constexpr const char* kNrHugepages = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
inline constexpr const char* kFreeHugepages = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";

inline std::optional<uint64_t> read_number(const char* path) {
  std::ifstream in(path);
  uint64_t v = 0;
  if (in >> v) return v;
  return std::nullopt;
}

inline bool write_number(const char* path, uint64_t v) {
  std::ofstream out(path);
  out << v << '\n';
  out.flush();
  return static_cast<bool>(out);
}

// A lock shared by every process running these tests.
class SystemLock {
 public:
  explicit SystemLock(bool exclusive) {
    fd_ = open("/tmp/sluice-dma-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ >= 0) flock(fd_, exclusive ? LOCK_EX : LOCK_SH);
  }
  ~SystemLock() {
    if (fd_ >= 0) close(fd_);
  }
  SystemLock(const SystemLock&) = delete;
  SystemLock& operator=(const SystemLock&) = delete;

 private:
  int fd_ = -1;
};

// Makes sure `pages` 2 MiB hugepages are free, reserving more when root, and restores the
// previous reservation when destroyed. skip_reason() is non-empty when it could not.
class HugepageReservation {
 public:
  explicit HugepageReservation(uint64_t pages) {
    auto nr = read_number(kNrHugepages);
    auto free = read_number(kFreeHugepages);
    if (!nr || !free) {
      skip_ = "this kernel has no 2 MiB hugepages";
      return;
    }
    if (*free >= pages) return;  // enough already reserved: change nothing
    if (geteuid() != 0 || access(kNrHugepages, W_OK) != 0) {
      skip_ = "needs root (and a writable " + std::string(kNrHugepages) + ") to reserve hugepages";
      return;
    }
    previous_ = *nr;
    uint64_t target = *nr + (pages - *free);
    if (!write_number(kNrHugepages, target) || read_number(kFreeHugepages).value_or(0) < pages) {
      skip_ = "the kernel could not reserve " + std::to_string(pages) +
              " hugepages (memory too fragmented?)";
    }
  }
  ~HugepageReservation() {
    if (previous_) write_number(kNrHugepages, *previous_);
  }
  HugepageReservation(const HugepageReservation&) = delete;
  HugepageReservation& operator=(const HugepageReservation&) = delete;

  const std::string& skip_reason() const { return skip_; }

 private:
  std::optional<uint64_t> previous_;
  std::string skip_;
};

// An empty pool before and after each test, in VA mode.
class DmaTest : public ::testing::Test {
 protected:
  explicit DmaTest(bool exclusive = false) : lock_(exclusive) {}
  void SetUp() override { reset(); }
  void TearDown() override { reset(); }
  static void reset() {
    dma_teardown();
    ASSERT_TRUE(dma_set_iova_mode(IovaMode::va).ok());
  }

 private:
  SystemLock lock_;
};

// As DmaTest, with kPages hugepages reserved (or the test skipped) for its duration.
class HugepageTest : public DmaTest {
 protected:
  static constexpr uint64_t kPages = 48;  // 96 MiB
  HugepageTest() : DmaTest(/*exclusive=*/true) {}
  void SetUp() override {
    DmaTest::SetUp();
    reservation_.emplace(kPages);
    if (!reservation_->skip_reason().empty()) GTEST_SKIP() << reservation_->skip_reason();
  }
  void TearDown() override {
    DmaTest::TearDown();  // unmap before the reservation is given back
    reservation_.reset();
  }

 private:
  std::optional<HugepageReservation> reservation_;
};

// The physical address of a byte, read independently of the code under test; 0 when the
// kernel hides page frame numbers.
inline uint64_t pagemap_pa(const void* p) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  auto a = reinterpret_cast<uintptr_t>(p);
  uint64_t entry = 0;
  ssize_t got = pread(fd, &entry, sizeof entry, static_cast<off_t>((a >> 12) * sizeof entry));
  close(fd);
  uint64_t pfn = entry & ((uint64_t{1} << 55) - 1);
  if (got != sizeof entry || !(entry >> 63) || pfn == 0) return 0;
  return (pfn << 12) | (a & 4095);
}

}  // namespace sluice::env::testing
