#include "nvme/admin_queue.h"

#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "base/barrier.h"
#include "base/clock.h"
#include "nvme/fabrics_device.h"

namespace sluice::nvme {

AdminQueue::AdminQueue(PciDevice& dev, uint32_t entries, uint32_t dstrd)
    : dev_(dev), entries_(entries), dstrd_(dstrd) {}

AdminQueue::~AdminQueue() {
  env::dma_free(sq_);
  env::dma_free(cq_);
}

Status AdminQueue::init() {
  if (dev_.fabrics() != nullptr) return Status::Ok();
  sq_ = static_cast<spec::Sqe*>(env::dma_zalloc(entries_ * sizeof(spec::Sqe)));
  cq_ = static_cast<spec::Cqe*>(env::dma_zalloc(entries_ * sizeof(spec::Cqe)));
  if (sq_ == nullptr || cq_ == nullptr) return Status(Errc::no_space, "nvme: no DMA memory for the admin queue");
  return Status::Ok();
}

void AdminQueue::clear() {
  if (dev_.fabrics() != nullptr) return;
  std::memset(sq_, 0, entries_ * sizeof(spec::Sqe));
  std::memset(cq_, 0, entries_ * sizeof(spec::Cqe));
  sq_tail_ = cq_head_ = 0;
  phase_ = 1;
}

Status AdminQueue::program() {
  if (dev_.fabrics() != nullptr) return Status::Ok();  // the association is the admin queue
  auto sq = env::dma_translate_checked(sq_, entries_ * sizeof(spec::Sqe));
  if (!sq.ok()) return sq.status();
  auto cq = env::dma_translate_checked(cq_, entries_ * sizeof(spec::Cqe));
  if (!cq.ok()) return cq.status();
  // The device may translate differently from env (the model checks its own mappings).
  const uint64_t sq_iova = dev_.translate(sq_), cq_iova = dev_.translate(cq_);
  if (sq_iova == env::kDmaBadIova || cq_iova == env::kDmaBadIova)
    return Status(Errc::io_error, "nvme: admin queue memory has no device address");
  const uint32_t n = entries_ - 1;  // 0-based sizes
  dev_.write32(spec::kRegAqa, n | (n << 16));
  dev_.write64(spec::kRegAsq, sq_iova);
  dev_.write64(spec::kRegAcq, cq_iova);
  return Status::Ok();
}

Result<Completion> AdminQueue::execute(spec::Sqe& cmd, void* data, size_t len, uint64_t timeout_ms) {
  // Over a fabric the connection's own command timeout (the admin timeout) bounds it.
  if (FabricsDevice* f = dev_.fabrics()) return f->admin().execute(cmd, data, len);
  (void)data;
  (void)len;
  cmd.cid = next_cid_++;
  std::memcpy(&sq_[sq_tail_], &cmd, sizeof cmd);
  sq_tail_ = (sq_tail_ + 1) % entries_;
  release_barrier();
  dev_.write32(spec::sq_doorbell(0, dstrd_), sq_tail_);

  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  for (uint64_t spins = 0;; ++spins) {
    spec::Cqe& e = cq_[cq_head_];
    const uint16_t status = __atomic_load_n(&e.status, __ATOMIC_ACQUIRE);
    if ((status & 1) == phase_) {
      Completion c;
      c.status = static_cast<uint16_t>(status & ~1u);
      c.dw0 = e.dw0;
      const uint16_t cid = e.cid;
      if (++cq_head_ == entries_) {
        cq_head_ = 0;
        phase_ ^= 1;
      }
      dev_.write32(spec::cq_doorbell(0, dstrd_), cq_head_);
      // Only one command is ever outstanding, so a stray completion is a device bug.
      if (cid != cmd.cid)
        return Status(Errc::io_error, fmt::format("nvme: admin completion for cid {} while waiting for {}", cid, cmd.cid));
      return c;
    }
    if ((spins & 1023) == 0) {
      if (clock::now_ns() > deadline)
        return Status(Errc::aborted, fmt::format("nvme: admin command {:#04x} timed out after {} ms", cmd.opc, timeout_ms));
      if (spins > 100000) std::this_thread::yield();
    }
  }
}

}  // namespace sluice::nvme
