// A memory-mapped BAR: volatile 32/64-bit register access, shared by VFIO and UIO.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace sluice::nvme {

class MmioBar {
 public:
  MmioBar() = default;
  MmioBar(void* base, size_t len) : base_(static_cast<uint8_t*>(base)), len_(len) {}
  MmioBar(const MmioBar&) = delete;
  MmioBar& operator=(const MmioBar&) = delete;
  ~MmioBar() {
    if (base_ != nullptr) munmap(base_, len_);
  }

  // Outside the mapping, reads return all ones (like a vanished device) and writes are
  // dropped, rather than faulting.
  uint32_t read32(uint32_t off) const {
    if (off + 4 > len_) [[unlikely]] return ~0u;
    return *reinterpret_cast<volatile uint32_t*>(base_ + off);
  }
  void write32(uint32_t off, uint32_t v) {
    if (off + 4 > len_) [[unlikely]] return;
    *reinterpret_cast<volatile uint32_t*>(base_ + off) = v;
  }
  size_t size() const { return len_; }

 private:
  uint8_t* base_ = nullptr;
  size_t len_ = 0;
};

}  // namespace sluice::nvme
