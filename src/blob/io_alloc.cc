// First-write allocation for the data path: thin clusters are published at once; clones copy
// the ancestor's cluster asynchronously into a reserved cluster that stays invisible (reads
// keep going to the ancestor) until finish_copy() publishes it. See io.h for the design.
#include <algorithm>

#include <fmt/format.h>

#include "blob/store.h"

namespace sluice::blob {

Result<Store::AllocState> Store::try_allocate(Blob& blob, uint64_t index, bool whole, bool allow_copy,
                                              bool may_do_io, AllocGrant* grant) {
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return AllocState::retry;
  BlobMeta& m = blob.meta();
  if (!desc_) return Status(Errc::aborted, "the blobstore is closed");
  if (read_only_) return Status(Errc::permission, "the blobstore was loaded read-only");
  if (m.read_only()) return Status(Errc::permission, fmt::format("blob {} is read-only", m.id));
  if (index >= m.size) return Status(Errc::out_of_range, fmt::format("cluster {} is beyond blob {} ({} clusters)", index, m.id, m.size.load()));
  if (m.extents.get(index)) return AllocState::done;  // another request got here first
  for (const PendingCopy& p : copies_) {
    if (p.blob == m.id && p.index == index) {
      grant->epoch = alloc_epoch_.load(std::memory_order_relaxed);
      return AllocState::copying;
    }
  }
  const uint32_t src = whole ? 0 : resolve_read(m, index);
  if (src && !allow_copy) return AllocState::retry;
  if (reserved_.empty()) {
    if (!may_do_io) return AllocState::retry;
    SLUICE_RETURN_IF_ERROR(reserve_clusters(1));
  }
  // Reserved clusters are zeroed and durably DIRTY, so a crash before the extent is durable
  // leaves nothing behind that recovery would not zero.
  const uint32_t c = reserved_.back();
  reserved_.pop_back();
  if (src) {
    copies_.push_back({m.id, index});
    grant->cluster = c;
    grant->src_plus1 = src;
    return AllocState::copy;
  }
  Status st = apply(Record::make_extent(m.id, index, 1, c + 1));
  if (!st.ok()) {
    reserved_.push_back(c);  // untouched: still zero
    return st;
  }
  grant->allocated = true;
  return AllocState::done;
}

Status Store::finish_copy(Blob& blob, uint64_t index, const AllocGrant& grant, bool copied) {
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return Status(Errc::busy, {});
  BlobMeta& m = blob.meta();
  auto it = std::find_if(copies_.begin(), copies_.end(), [&](const PendingCopy& p) { return p.blob == m.id && p.index == index; });
  if (it != copies_.end()) copies_.erase(it);
  alloc_epoch_.fetch_add(1, std::memory_order_release);
  // The copy is stale if the blob meanwhile got this cluster another way (inflate, decouple),
  // shrank, or now reads it from elsewhere; the caller then starts over.
  const bool current = desc_ && copied && index < m.size && m.extents.get(index) == 0 && !m.read_only() &&
                       resolve_read(m, index) == grant.src_plus1;
  if (current) {
    Status st = apply(Record::make_extent(m.id, index, 1, grant.cluster + 1));
    if (st.ok()) {
      pending_copies_ = true;  // the next commit flushes the copy before the extent
      return Status::Ok();
    }
  }
  // Possibly half written: zero it (after the next commit) before it is handed out again.
  freed_.push_back(grant.cluster);
  return Status::Ok();
}

}  // namespace sluice::blob
