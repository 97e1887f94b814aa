// The blob data path: per-thread channels that translate blob offsets to device blocks.
// Implemented in io.cc (submit and completion), blob_channel.cc (channels, polling,
// copy-on-write) and io_alloc.cc (first-write allocation); the Blobstore facade forwards here.
//
// Rules (the bdev layer's, one level up):
// - A BlobChannel belongs to the thread that got it (one per thread per store, reference
//   counted). Submit and poll only there. Callbacks run inside poll_blob_channel(), never
//   inside blob_submit(); a callback may submit again at once.
// - Requests come from a per-channel pool (kBlobChannelRequests). A full pool returns
//   Errc::busy: poll, then resubmit. Nothing is allocated per I/O.
// - Offsets and lengths are in io units (Store::super().io_unit bytes, the bdev block size).
//   Buffers follow the bdev's alignment rules. Up to kInlineIovs segments are copied into
//   the request; a longer iovec array must stay valid until the completion.
// - The blob must stay open until its requests complete; the channel must be put back (with
//   nothing outstanding) before the store is unloaded.
//
// How a request runs:
// 1. Writes and write_zeroes first make every cluster they touch writable (try_allocate):
//    a thin cluster with nothing beneath it gets a zeroed cluster at once; a cluster a clone
//    reads from an ancestor is copied (read + write through this channel, asynchronously)
//    into a reserved cluster that nobody sees until the copy is done and finish_copy()
//    publishes it, so concurrent reads keep reading the ancestor's data. The store records
//    which copies are running, so two requests (any threads) never allocate or copy the same
//    cluster twice: the second waits (in its channel, retried from poll) until the first
//    publishes. write_zeroes of a cluster that reads as zeroes anyway allocates nothing; of a
//    whole cluster over ancestor data it takes a zeroed cluster without copying.
//    None of this waits on the store lock (try_lock, retried from poll), and nothing here
//    polls the channel from inside a submit: a reserve refill, which commits metadata
//    synchronously, happens only from poll.
// 2. The freeze gate: the request is counted in Blob::in_flight, then checks Blob::frozen; a
//    frozen blob's requests wait in the channel and are retried on later polls. A channel
//    holds one count per blob for all its gated requests to it (taken by the first, dropped
//    by the last) and checks `frozen` for every new one, so a busy channel pays no atomic
//    read-modify-write per I/O and a freezer still waits for every request it let in.
//    Counted, the request re-checks that its clusters are still allocated (a snapshot may
//    have moved them; then it goes back to step 1), resolves every piece and submits them
//    together. The count drops when its last piece completes. Allocation (step 1) never
//    holds it, so a snapshot that holds the store lock while waiting for the count cannot
//    deadlock with it.
// 3. Pieces split at cluster boundaries: an allocated cluster maps to cluster_lba() plus the
//    offset; a read of a cluster nobody has (after the ancestors) is zero-filled in memory.
//    The request completes once, with the first error, after every piece.
//
// Durability contract:
// - blob_flush() is a device FLUSH: every write completed before it is durable when it
//   completes.
// - Metadata is separate: a first write allocates a cluster in memory, and that allocation
//   becomes durable only with the next Blobstore::sync_md(). After a crash, a thin blob's
//   clusters first written since the last completed sync_md() are unallocated again and read
//   as zeroes (a clone's read its ancestor's data again), whatever flush() said about the
//   data: allocated clusters always read as zeroes until written (docs/format/blobstore.md),
//   so a lost allocation can never expose another blob's old bytes. Durable data in a newly
//   written thin cluster needs flush() and sync_md() (in either order; sync_md() flushes
//   copied clusters before their extents by itself).
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "bdev/bdev.h"
#include "blob/store.h"

namespace sluice::blob {

enum class BlobOp : uint8_t { read, write, write_zeroes };

class BlobChannel;

inline constexpr uint32_t kBlobChannelRequests = 256;  // requests per channel before Errc::busy

// Per-channel counters (owner thread only).
struct BlobChannelStats {
  uint64_t ops[3] = {};      // completed requests by BlobOp
  uint64_t flushes = 0;
  uint64_t errors = 0;       // requests completed with an error
  uint64_t busy = 0;         // submits refused because the pool was full
  uint64_t held = 0;         // times a request waited for a frozen blob
  uint64_t allocations = 0;  // clusters this channel allocated without a copy
  uint64_t copies = 0;       // clusters this channel copied on write
  uint64_t zero_fills = 0;   // read pieces answered with zeroes in memory
};

Result<BlobChannel*> get_blob_channel(Store& store);
Status put_blob_channel(Store& store, BlobChannel* ch);
int poll_blob_channel(BlobChannel* ch);
// offset and length in io units. iov may be null for write_zeroes.
Status blob_submit(Store& store, BlobChannel* ch, Blob& blob, BlobOp op, const iovec* iov, int iovcnt,
                   uint64_t offset, uint64_t length, bdev::IoCallback cb, void* arg);
Status blob_flush(Store& store, BlobChannel* ch, bdev::IoCallback cb, void* arg);

const BlobChannelStats& blob_channel_stats(const BlobChannel* ch);
// Requests taken from the pool and not yet completed (callback not yet run).
uint32_t blob_channel_outstanding(const BlobChannel* ch);

}  // namespace sluice::blob
