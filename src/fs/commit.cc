// How namespace changes reach the device (docs/format/sluicefs.md, "Namespace changes and
// their atomicity"): a file's state record, allocation changes, and the two ways pending
// changes leave memory: publish (journal write, survives the process) and commit (journal
// write and FLUSH, survives a power cut). Every function here takes md_mu_ or expects it.
#include <algorithm>

#include <fmt/format.h>

#include "fs/fs_core.h"

namespace sluice::fs {

Status FsCore::set_state_locked(Inode& ino, const InodeState& st) {
  SLUICE_RETURN_IF_ERROR(bs_->set_xattr(ino.id, kXattrState, encode_state(st), true));
  ino.persisted = st;
  ino.state_pending.store(true);
  if (auto it = inodes_.find(ino.id); it != inodes_.end()) pending_states_.push_back(it->second);
  ++md_dirty_;
  return Status::Ok();
}

Result<InodeState> FsCore::update_state(Inode& ino, const std::function<void(InodeState&)>& change) {
  std::lock_guard lock(md_mu_);
  InodeState st = ino.persisted;
  change(st);
  SLUICE_RETURN_IF_ERROR(set_state_locked(ino, st));
  SLUICE_RETURN_IF_ERROR(publish_locked());
  return st;
}

Status FsCore::publish_locked() {
  if (read_only() || unmounted_) return Status::Ok();
  return bs_->push_md();
}

Status FsCore::commit_locked() {
  if (read_only() || unmounted_) return Status::Ok();
  const uint64_t dirty = md_dirty_.load();
  Status st = bs_->sync_md();
  if (!st.ok()) return st;
  count(counters_.commits);
  md_dirty_.fetch_sub(dirty);
  for (auto& ino : pending_states_) {
    ino->committed_size.store(ino->persisted.size);
    ino->state_pending.store(false);
  }
  pending_states_.clear();
  return Status::Ok();
}

Status FsCore::commit() {
  std::lock_guard lock(md_mu_);
  return commit_locked();
}

Status FsCore::grow(Inode& ino, uint64_t bytes, bool exact) {
  const uint64_t cur = ino.allocated.load();
  if (bytes <= cur) return Status::Ok();
  std::lock_guard lock(md_mu_);
  uint64_t target = bytes;
  if (!exact) target = std::max(bytes, cur + std::clamp<uint64_t>(cur, kMinGrow, kMaxGrow));
  uint64_t clusters = (target + cluster_ - 1) / cluster_;
  Status st = allocate_locked(ino, clusters);
  if (st.code() == Errc::no_space && !exact) {
    clusters = (bytes + cluster_ - 1) / cluster_;  // the step does not fit; what is needed might
    st = allocate_locked(ino, clusters);
  }
  if (!st.ok()) {
    if (st.code() == Errc::no_space)
      return Status(Errc::no_space, fmt::format("out of space: {} needs {} bytes allocated ({})", path_locked(ino),
                                                bytes, st.message()));
    return st;
  }
  ++md_dirty_;
  ino.allocated.store(clusters * cluster_);
  return publish_locked();
}

// Growth takes the reserve only as must be: first from the free space outside it. The
// reserve opens
// - to a file within its first preallocation step: the small files a database creates when
//   it opens (a LOG, a MANIFEST, OPTIONS, CURRENT, the start of a WAL);
// - to the replay of write buffers at mount: bytes the files held when their process died;
// - for half of it, to any growth from a read-write mount to the first delete: that is
//   where a database reopens and flushes its recovered WALs into new SSTs (each as large as a
//   memtable) before it deletes them and so gives the space back. Only half, so that
//   whatever else fills the device right after a mount leaves the rest to the small files.
// Metadata takes no clusters (the journal and the checkpoint have their own areas), so
// commits never need the reserve.
Status FsCore::allocate_locked(Inode& ino, uint64_t clusters) {
  const uint64_t have = ino.allocated.load() / cluster_;
  if (clusters <= have) return bs_->resize(ino.id, clusters);
  const uint64_t free = bs_->store_info().free_clusters, more = clusters - have;
  const uint64_t outside = free > reserve_ ? free - reserve_ : 0;
  const uint64_t from_reserve = more > outside ? more - outside : 0;
  const bool first_step = clusters * cluster_ <= std::max<uint64_t>(kMinGrow, cluster_);
  const bool reserve_open = first_step || replaying_ || (reopening_ && reopen_taken_ + from_reserve <= reserve_ / 2);
  if (more > free || (from_reserve > 0 && !reserve_open))
    return Status(Errc::no_space, fmt::format("{} more cluster(s) needed, {} free, {} of them the reserve kept for "
                                              "reopening and compacting a full file system",
                                              more, free, std::min(free, reserve_)));
  SLUICE_RETURN_IF_ERROR(bs_->resize(ino.id, clusters));
  if (!first_step && !replaying_) reopen_taken_ += from_reserve;
  return Status::Ok();
}

Status FsCore::shrink(Inode& ino, uint64_t bytes) {
  const uint64_t clusters = (bytes + cluster_ - 1) / cluster_;
  if (clusters * cluster_ >= ino.allocated.load()) return Status::Ok();
  std::lock_guard lock(md_mu_);
  SLUICE_RETURN_IF_ERROR(bs_->resize(ino.id, clusters));
  ++md_dirty_;
  ino.allocated.store(clusters * cluster_);
  return publish_locked();
}

}  // namespace sluice::fs
