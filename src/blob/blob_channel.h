// BlobChannel: a thread's context for one blobstore — the thread's bdev channel of the
// store's device, a preallocated pool of blob requests and of copy-on-write slots, and the
// queues of requests waiting for something (an allocation, a frozen blob, a free bdev slot).
// Internal to src/blob; io.h is the interface.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "base/intrusive_list.h"
#include "bdev/bdev.h"
#include "bdev/bdev_io.h"
#include "blob/io.h"
#include "blob/store.h"

namespace sluice::blob {

class BlobChannel;
struct CopyOp;

enum class ReqKind : uint8_t { read, write, write_zeroes, flush };

struct BlobRequest {
  static constexpr int kInlineIovs = bdev::BdevIo::kInlineIovs;

  BlobRequest* next = nullptr;  // pool and queue link
  BlobChannel* ch = nullptr;
  Blob* blob = nullptr;
  ReqKind kind = ReqKind::read;
  Errc status = Errc::ok;
  bool gated = false;          // counted in blob->in_flight (through `gate` when set)
  bool issue_parked = false;   // waiting in issue_wait_ for a bdev slot
  bool wait_epoch_valid = false;
  uint64_t offset = 0;         // io units
  uint64_t length = 0;
  bdev::IoCallback cb = nullptr;
  void* cb_arg = nullptr;

  const iovec* iovs = nullptr;  // iov_storage or the caller's (long) array
  int iovcnt = 0;

  // Allocation phase (writes): the next blob cluster to make writable.
  uint64_t alloc_next = 0;
  uint64_t wait_epoch = 0;  // another request's copy of alloc_next runs until the epoch moves
  CopyOp* copy = nullptr;   // the copy this request drives
  struct GateRef* gate = nullptr;  // the channel's shared count for this blob, if any

  // Issue phase: io units handed out so far, the buffer cursor, pieces in flight.
  uint64_t issued = 0;
  int seg = 0;
  size_t seg_off = 0;
  uint32_t pieces = 0;

  iovec iov_storage[kInlineIovs];
};

// One cluster copy (read the ancestor's cluster, write it into the reserved one) in chunks.
struct CopyOp {
  CopyOp* next = nullptr;
  BlobChannel* ch = nullptr;
  BlobRequest* req = nullptr;
  uint64_t index = 0;  // blob cluster
  Store::AllocGrant grant;
  uint64_t done_blocks = 0;
  uint64_t step_blocks = 0;
  bool writing = false;  // the chunk in buf was read; write it next
  Errc status = Errc::ok;
  std::unique_ptr<char, void (*)(void*)> buf{nullptr, free};  // allocated on first use, kept
};

// A channel's share of one blob's in_flight: while any of its requests to the blob are
// gated, the channel holds one count for all of them (one atomic increment when the first
// enters, one decrement when the last leaves) and re-checks `frozen` for each new request.
// A freezer that set `frozen` therefore still waits for every admitted request, and requests
// arriving after it are held, while a busy channel pays no atomic read-modify-write per I/O.
struct GateRef {
  Blob* blob = nullptr;
  uint32_t count = 0;
};

class BlobChannel {
 public:
  static constexpr uint32_t kRequests = kBlobChannelRequests;
  static constexpr uint32_t kCopies = 4;                    // clusters copied at once
  static constexpr uint64_t kCopyChunkBytes = 1u << 20;    // copy buffer per slot (at most)
  static constexpr int kGateSlots = 8;                      // blobs with a shared count at once

  BlobChannel(Store& store, bdev::BdevChannel* bch);
  ~BlobChannel() = default;
  BlobChannel(const BlobChannel&) = delete;
  BlobChannel& operator=(const BlobChannel&) = delete;

  Store& store;
  bdev::BdevDesc& desc;
  bdev::BdevChannel* const bch;
  const std::thread::id owner;
  uint32_t refs = 0;

  // Geometry, fixed for the store's life.
  const uint32_t io_unit;
  const uint64_t units_per_cluster;  // io units = bdev blocks
  const int cluster_shift;           // log2(units_per_cluster), or -1 when not a power of two
  const uint64_t base_lba;           // cluster_lba(0)
  const uint32_t buf_align;
  const bool has_write_zeroes;
  const uint64_t copy_chunk_blocks;

  uint64_t cluster_of(uint64_t unit) const {
    return cluster_shift >= 0 ? unit >> cluster_shift : unit / units_per_cluster;
  }
  uint64_t lba(uint32_t cluster_plus1, uint64_t unit_in_cluster) const {
    return base_lba + uint64_t{cluster_plus1 - 1} * units_per_cluster + unit_in_cluster;
  }

  std::vector<BlobRequest> requests;
  IntrusiveQueue<BlobRequest> free_reqs;
  IntrusiveQueue<BlobRequest> done;         // completed; callbacks run in poll
  IntrusiveQueue<BlobRequest> alloc_wait;   // waiting to allocate (lock, copy slot, other copy)
  IntrusiveQueue<BlobRequest> held;         // the blob was frozen
  IntrusiveQueue<BlobRequest> issue_wait;   // the bdev channel was full
  uint32_t outstanding = 0;                 // requests out of the pool

  GateRef gates[kGateSlots];  // more blobs than this at once: requests count one by one

  std::vector<CopyOp> copies;
  IntrusiveQueue<CopyOp> free_copies;
  IntrusiveQueue<CopyOp> copy_retry;        // a copy step found the bdev channel full
  IntrusiveQueue<CopyOp> copy_finish;       // copies to publish (or abandon) from poll

  std::unique_ptr<char, void (*)(void*)> zero_buf{nullptr, free};  // write_zeroes fallback
  BlobChannelStats stats;
};

// io.cc
void start_request(BlobChannel& ch, BlobRequest* req, bool in_poll);
void issue_request(BlobChannel& ch, BlobRequest* req);
void fail_request(BlobChannel& ch, BlobRequest* req, Errc status);
// blob_channel.cc
void start_copy(BlobChannel& ch, CopyOp* op);

}  // namespace sluice::blob
