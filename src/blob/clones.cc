// Snapshots, clones, inflate and decouple, and the cluster copies they need.
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/clock.h"
#include "blob/store.h"

namespace sluice::blob {

class Store::Freeze {
 public:
  explicit Freeze(std::shared_ptr<Blob> b) : blob_(std::move(b)) {}
  ~Freeze() {
    if (blob_) blob_->frozen.store(false);
  }

 private:
  std::shared_ptr<Blob> blob_;
};

Result<std::shared_ptr<Store::Freeze>> Store::freeze(BlobId id) {
  auto it = open_.find(id);
  std::shared_ptr<Blob> blob = it == open_.end() ? nullptr : it->second.lock();
  if (!blob) return std::make_shared<Freeze>(nullptr);
  blob->frozen.store(true);
  // Requests in flight complete on their own threads' polls; a few seconds is plenty.
  const uint64_t deadline = clock::now_ns() + 5'000'000'000ull;
  while (blob->in_flight.load() != 0) {
    if (clock::now_ns() > deadline) {
      blob->frozen.store(false);
      return Status(Errc::busy, fmt::format("blob {} still has I/O in flight; is this thread waiting on its own?", id));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return std::make_shared<Freeze>(std::move(blob));
}

Status Store::copy_cluster(uint32_t from_plus1, uint32_t to) {
  const uint64_t blocks = sb_.cluster_size / desc_->geometry().block_size;
  auto ch = desc_->get_channel();
  if (!ch.ok()) return ch.status();
  bdev::SyncIo io{*desc_, *ch};
  Status st = io.read(scratch_.get(), cluster_lba(from_plus1 - 1), blocks);
  if (st.ok()) st = io.write(scratch_.get(), cluster_lba(to), blocks);
  (void)desc_->put_channel(*ch);
  if (st.ok()) pending_copies_ = true;
  return st;
}

uint32_t Store::resolve_read(const BlobMeta& meta, uint64_t index) {
  for (const BlobMeta* m = &meta; m != nullptr; m = m->parent_meta.load(std::memory_order_acquire)) {
    if (index >= m->size.load(std::memory_order_relaxed)) return 0;  // a smaller ancestor reads as zeroes
    if (uint32_t v = m->extents.get(index)) return v;
  }
  return 0;
}

Result<BlobId> Store::snapshot(BlobId id, const std::map<std::string, std::string>& xattrs) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  if (b->read_only()) return Status(Errc::invalid_argument, fmt::format("blob {} is read-only; clone it instead", id));
  auto frozen = freeze(id);
  if (!frozen.ok()) return frozen.status();
  auto new_id = new_blob_id();
  if (!new_id.ok()) return new_id.status();
  const BlobId sid = *new_id;
  // The snapshot takes the blob's clusters and its place under the parent; the blob becomes
  // an empty clone of the snapshot. One batch, so a crash sees all of it or none.
  SLUICE_RETURN_IF_ERROR(apply(Record::make_create(sid, kFlagReadOnly | kFlagSnapshot | (b->flags & kFlagThin), 0, b->size)));
  if (b->parent) SLUICE_RETURN_IF_ERROR(apply(Record::make_set_parent(sid, b->parent)));
  for (auto& [k, v] : xattrs) SLUICE_RETURN_IF_ERROR(apply(Record::make_xattr_set(sid, false, k, v)));
  std::vector<std::pair<uint64_t, uint32_t>> moves;
  b->extents.for_each([&](uint64_t i, uint32_t v) { moves.emplace_back(i, v); });
  SLUICE_RETURN_IF_ERROR(apply(Record::make_set_parent(id, sid)));
  for (auto& [i, v] : moves) {
    SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(id, i, 1, 0)));
    SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(sid, i, 1, v)));
  }
  // Every cluster released above was re-owned by the snapshot.
  std::erase_if(freed_, [&](uint32_t c) { return model_->owner(c) != 0; });
  // The blob now allocates on first write, whatever it was before.
  SLUICE_RETURN_IF_ERROR(apply(Record::make_set_flags(id, b->flags | kFlagThin)));
  return sid;
}

Result<BlobId> Store::clone(BlobId snapshot_id, const std::map<std::string, std::string>& xattrs) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* s = find_blob(snapshot_id, &st);
  if (!s) return st;
  if (!s->read_only())
    return Status(Errc::invalid_argument, fmt::format("blob {} is not read-only; clone a snapshot", snapshot_id));
  auto new_id = new_blob_id();
  if (!new_id.ok()) return new_id.status();
  const BlobId cid = *new_id;
  SLUICE_RETURN_IF_ERROR(apply(Record::make_create(cid, kFlagThin, snapshot_id, s->size)));
  for (auto& [k, v] : xattrs) SLUICE_RETURN_IF_ERROR(apply(Record::make_xattr_set(cid, false, k, v)));
  return cid;
}

Status Store::inflate(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  if (b->read_only()) return Status(Errc::permission, fmt::format("blob {} is read-only", id));
  auto frozen = freeze(id);
  if (!frozen.ok()) return frozen.status();
  // Reserve up front: a reservation commits, and the inflate must land in one batch.
  uint64_t need = 0;
  for (uint64_t i = 0; i < b->size; ++i) need += b->extents.get(i) == 0;
  SLUICE_RETURN_IF_ERROR(reserve_clusters(need));
  for (uint64_t i = 0; i < b->size; ++i) {
    if (b->extents.get(i)) continue;
    uint32_t src = resolve_read(*b, i);
    auto c = take_cluster();
    if (!c.ok()) return c.status();
    if (src) {
      Status cp = copy_cluster(src, *c);
      if (!cp.ok()) {
        freed_.push_back(*c);  // possibly half written: zero it before reuse
        return cp;
      }
    }
    SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(id, i, 1, *c + 1)));
  }
  SLUICE_RETURN_IF_ERROR(apply(Record::make_set_parent(id, 0)));
  return apply(Record::make_set_flags(id, b->flags & ~kFlagThin));
}

Status Store::decouple(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  if (b->parent == 0) return Status(Errc::invalid_argument, fmt::format("blob {} has no parent", id));
  BlobMeta* p = model_->find(b->parent);
  auto frozen = freeze(id);
  if (!frozen.ok()) return frozen.status();
  auto copies_needed = [&](uint64_t i) { return !b->extents.get(i) && i < p->size && p->extents.get(i); };
  uint64_t need = 0;
  for (uint64_t i = 0; i < b->size; ++i) need += copies_needed(i);
  SLUICE_RETURN_IF_ERROR(reserve_clusters(need));  // before any record: one batch
  for (uint64_t i = 0; i < b->size; ++i) {
    if (!copies_needed(i)) continue;  // the grandparent (or zeroes) still answers, as before
    uint32_t src = p->extents.get(i);
    auto c = take_cluster();
    if (!c.ok()) return c.status();
    Status cp = copy_cluster(src, *c);
    if (!cp.ok()) {
      freed_.push_back(*c);
      return cp;
    }
    SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(id, i, 1, *c + 1)));
  }
  return apply(Record::make_set_parent(id, p->parent));
}

Result<uint32_t> Store::allocate_for_write(Blob& blob, uint64_t index) {
  std::lock_guard lock(mu_);
  BlobMeta& m = blob.meta();
  if (index >= m.size) return Status(Errc::out_of_range, fmt::format("cluster {} beyond blob {}", index, m.id));
  if (uint32_t v = m.extents.get(index)) return v;  // another thread got here first
  if (m.read_only()) return Status(Errc::permission, fmt::format("blob {} is read-only", m.id));
  const uint32_t src = resolve_read(m, index);
  auto c = take_cluster();
  if (!c.ok()) return c.status();
  if (src) {
    Status cp = copy_cluster(src, *c);
    if (!cp.ok()) {
      freed_.push_back(*c);
      return cp;
    }
  }
  SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(m.id, index, 1, *c + 1)));
  return *c + 1;
}

Status Store::deallocate(Blob& blob, uint64_t first, uint64_t count) {
  std::lock_guard lock(mu_);
  BlobMeta& m = blob.meta();
  if (m.read_only()) return Status(Errc::permission, fmt::format("blob {} is read-only", m.id));
  if (!m.thin() || m.parent != 0)
    return Status(Errc::not_supported, fmt::format("blob {}: only thin blobs without a parent give clusters back", m.id));
  if (first >= m.size || count > m.size - first) return Status(Errc::out_of_range, "deallocate beyond the blob");
  auto frozen = freeze(m.id);
  if (!frozen.ok()) return frozen.status();
  for (uint64_t i = first; i < first + count; ++i)
    if (m.extents.get(i)) SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(m.id, i, 1, 0)));
  return Status::Ok();
}

}  // namespace sluice::blob
