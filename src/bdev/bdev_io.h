// BdevIo: one request as a backend sees it. Preallocated in per-channel pools; never
// allocated per I/O.
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "base/status.h"
#include "bdev/bdev.h"

namespace sluice::bdev {

class BdevChannel;

struct BdevIo {
  static constexpr int kInlineIovs = 16;    // segments a split child can carry
  static constexpr int kDriverBytes = 128;  // backend scratch (an iocb, a crashsim record)

  IoType type = IoType::read;
  Errc status = Errc::ok;
  int iovcnt = 0;
  uint64_t offset_blocks = 0;
  uint64_t num_blocks = 0;
  iovec* iovs = nullptr;  // the caller's array, or iov_storage

  BdevChannel* channel = nullptr;
  IoCallback cb = nullptr;
  void* cb_arg = nullptr;
  uint64_t submit_ticks = 0;
  BdevIo* next = nullptr;  // pool and queue link; the backend's own between submit() and complete()

  // Splitting: a parent tracks its children; a child points at its parent.
  BdevIo* parent = nullptr;
  uint32_t children_in_flight = 0;
  uint64_t split_next_block = 0;  // first block not yet handed to a child
  int split_iov = 0;              // segment and byte offset where that block starts
  size_t split_iov_offset = 0;
  bool from_child_pool = false;
  bool split_waiting = false;     // parent is queued for a free child slot

  // The caller's buffers missed the device's alignment: the backend reads or writes `bounce`
  // (DMA memory, one segment), and a read is copied to the caller's segments before the
  // callback runs.
  void* bounce = nullptr;
  iovec bounce_iov{};
  iovec* user_iovs = nullptr;
  int user_iovcnt = 0;

  iovec iov_storage[kInlineIovs];
  alignas(16) unsigned char driver[kDriverBytes];

  template <typename T>
  T* driver_ctx() {
    static_assert(sizeof(T) <= kDriverBytes, "backend context too large");
    return reinterpret_cast<T*>(driver);
  }
  uint64_t bytes(uint32_t block_size) const { return num_blocks * block_size; }
};

}  // namespace sluice::bdev
