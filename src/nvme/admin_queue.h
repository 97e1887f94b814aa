// The admin queue pair: one command at a time, polled to completion (control path only; the
// controller serializes callers). On PCIe its rings are in DMA memory and registered in
// AQA/ASQ/ACQ; over a fabric it is the FabricsDevice's admin connection.
#pragma once

#include <cstdint>

#include "env/env.h"
#include "nvme/nvme.h"

namespace sluice::nvme {

class AdminQueue {
 public:
  AdminQueue(PciDevice& dev, uint32_t entries, uint32_t dstrd);
  ~AdminQueue();
  AdminQueue(const AdminQueue&) = delete;
  AdminQueue& operator=(const AdminQueue&) = delete;

  // Allocates the rings; then program() writes AQA/ASQ/ACQ (controller disabled).
  Status init();
  Status program();
  // Zeroes the rings and indices, for a controller that was reset.
  void clear();

  // Submits `cmd` (its cid is assigned here) and polls for its completion up to `timeout_ms`.
  // `data` (`len` bytes) is what the command's PRPs point at (PCIe) or what its PDUs carry.
  Result<Completion> execute(spec::Sqe& cmd, void* data, size_t len, uint64_t timeout_ms);

 private:
  PciDevice& dev_;
  const uint32_t entries_;
  const uint32_t dstrd_;
  spec::Sqe* sq_ = nullptr;
  spec::Cqe* cq_ = nullptr;
  uint32_t sq_tail_ = 0, cq_head_ = 0;
  uint16_t phase_ = 1;
  uint16_t next_cid_ = 0;
};

}  // namespace sluice::nvme
