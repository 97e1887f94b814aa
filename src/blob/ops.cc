// Metadata operations on blobs. Each runs under the store mutex, applies records to the
// model at once, and is durable after the next commit (sync_md()).
#include <algorithm>

#include <fmt/format.h>

#include "blob/store.h"

namespace sluice::blob {

BlobMeta* Store::find_blob(BlobId id, Status* st) {
  BlobMeta* b = model_->find(id);
  if (b == nullptr) *st = Status(Errc::not_found, fmt::format("no blob {}", id));
  return b;
}

Result<BlobId> Store::new_blob_id() const {
  const BlobId id = model_->next_id();
  if (id > Model::kMaxBlobId) return Status(Errc::no_space, "every blob id has been used");
  return id;
}

namespace {

Status check_xattr(std::string_view name, std::string_view value) {
  if (name.empty() || name.size() > kMaxXattrName)
    return Status(Errc::invalid_argument, fmt::format("attribute names are 1 to {} bytes", kMaxXattrName));
  if (value.size() > kMaxXattrValue)
    return Status(Errc::invalid_argument, fmt::format("attribute {} is {} bytes; the limit is {}", name, value.size(), kMaxXattrValue));
  return Status::Ok();
}

}  // namespace

Result<BlobId> Store::create(const CreateOptions& opts) {
  std::lock_guard lock(mu_);
  for (auto& [k, v] : opts.xattrs) SLUICE_RETURN_IF_ERROR(check_xattr(k, v));
  if (opts.size_clusters > uint64_t{model_->num_clusters()} * Model::kMaxOvercommit)
    return Status(Errc::invalid_argument, fmt::format("{} clusters is more than {}x the store", opts.size_clusters,
                                                      Model::kMaxOvercommit));
  auto new_id = new_blob_id();
  if (!new_id.ok()) return new_id.status();
  const BlobId id = *new_id;
  if (!opts.thin) SLUICE_RETURN_IF_ERROR(reserve_clusters(opts.size_clusters));
  SLUICE_RETURN_IF_ERROR(apply(Record::make_create(id, opts.thin ? kFlagThin : 0, 0, opts.size_clusters)));
  for (auto& [k, v] : opts.xattrs) SLUICE_RETURN_IF_ERROR(apply(Record::make_xattr_set(id, false, k, v)));
  if (!opts.thin) {
    // Thick: every cluster now, in runs of adjacent clusters.
    uint64_t i = 0;
    while (i < opts.size_clusters) {
      uint32_t first = reserved_.back();
      reserved_.pop_back();
      uint32_t run = 1;
      while (i + run < opts.size_clusters && !reserved_.empty() && reserved_.back() == first + run) {
        reserved_.pop_back();
        ++run;
      }
      SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(id, i, run, first + 1)));
      i += run;
    }
  }
  return id;
}

Status Store::resize(BlobId id, uint64_t size) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  if (b->read_only()) return Status(Errc::permission, fmt::format("blob {} is read-only", id));
  if (size > uint64_t{model_->num_clusters()} * Model::kMaxOvercommit)
    return Status(Errc::invalid_argument, fmt::format("{} clusters is more than {}x the store", size, Model::kMaxOvercommit));
  const uint64_t old = b->size;
  // Shrinking frees clusters: no write may still be in flight to them when they go.
  std::shared_ptr<Freeze> frozen;
  if (size < old) {
    auto f = freeze(id);
    if (!f.ok()) return f.status();
    frozen = std::move(f.value());
  }
  if (size > old && !b->thin()) SLUICE_RETURN_IF_ERROR(reserve_clusters(size - old));
  SLUICE_RETURN_IF_ERROR(apply(Record::make_resize(id, size)));
  if (size > old && !b->thin()) {
    for (uint64_t i = old; i < size; ++i) {
      if (b->parent != 0) continue;  // a thick clone still reads unwritten clusters from its parent
      SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(id, i, 1, reserved_.back() + 1)));
      reserved_.pop_back();
    }
  }
  return Status::Ok();
}

Status Store::remove(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  if (auto it = open_.find(id); it != open_.end() && !it->second.expired())
    return Status(Errc::busy, fmt::format("blob {} is open", id));
  if (b->clones.size() > 1)
    return Status(Errc::busy, fmt::format("snapshot {} has {} clones; delete or inflate all but one first", id,
                                          b->clones.size()));
  // Open blobs below this one read through it without the lock: removing it (a merge moves
  // its clusters and frees its metadata) must wait until none is open.
  for (auto& [oid, w] : open_) {
    if (w.expired()) continue;
    for (BlobMeta* m = model_->find(oid); m && m->parent; m = model_->find(m->parent))
      if (m->parent == id) return Status(Errc::busy, fmt::format("blob {} reads through blob {} and is open", oid, id));
  }
  if (b->clones.size() == 1) {
    // Merge into the only clone: it takes the snapshot's clusters it has not overwritten and
    // the snapshot's parent. The records land in one batch, so a crash sees all or none.
    BlobMeta* c = model_->find(b->clones.front());
    if (auto it = open_.find(c->id); it != open_.end() && !it->second.expired())
      return Status(Errc::busy, fmt::format("clone {} of snapshot {} is open", c->id, id));
    std::vector<std::pair<uint64_t, uint32_t>> moves;
    b->extents.for_each([&](uint64_t i, uint32_t v) {
      if (i < c->size && c->extents.get(i) == 0) moves.emplace_back(i, v);
    });
    for (auto& [i, v] : moves) {
      SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(id, i, 1, 0)));
      SLUICE_RETURN_IF_ERROR(apply(Record::make_extent(c->id, i, 1, v)));
    }
    SLUICE_RETURN_IF_ERROR(apply(Record::make_set_parent(c->id, b->parent)));
    // The moved clusters were released and re-owned in this batch: nothing to zero.
    freed_.erase(std::remove_if(freed_.begin(), freed_.end(), [&](uint32_t x) { return model_->owner(x) != 0; }),
                 freed_.end());
  }
  return apply(Record::make_remove(id));
}

Status Store::set_xattr(BlobId id, std::string_view name, std::string_view value, bool internal) {
  std::lock_guard lock(mu_);
  SLUICE_RETURN_IF_ERROR(check_xattr(name, value));
  Status st;
  if (!find_blob(id, &st)) return st;
  return apply(Record::make_xattr_set(id, internal, name, value));
}

Result<std::string> Store::get_xattr(BlobId id, std::string_view name, bool internal) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  auto& m = b->xattrs[internal ? 1 : 0];
  auto it = m.find(name);
  if (it == m.end()) return Status(Errc::not_found, fmt::format("blob {} has no attribute {}", id, name));
  return it->second;
}

Status Store::remove_xattr(BlobId id, std::string_view name, bool internal) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  if (!b->xattrs[internal ? 1 : 0].contains(name))
    return Status(Errc::not_found, fmt::format("blob {} has no attribute {}", id, name));
  return apply(Record::make_xattr_remove(id, internal, name));
}

Status Store::set_read_only(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  return apply(Record::make_set_flags(id, b->flags | kFlagReadOnly));
}

Status Store::set_super_blob(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  if (id != 0 && !find_blob(id, &st)) return st;
  return apply(Record::make_super_blob(id));
}

Result<BlobId> Store::super_blob() {
  std::lock_guard lock(mu_);
  if (model_->super_blob() == 0) return Status(Errc::not_found, "the store has no super blob");
  return model_->super_blob();
}

std::vector<BlobId> Store::list() {
  std::lock_guard lock(mu_);
  std::vector<BlobId> ids;
  for (auto& [id, b] : model_->blobs()) ids.push_back(id);
  return ids;
}

Result<BlobInfo> Store::info(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  BlobInfo i;
  i.id = id;
  i.size_clusters = b->size;
  i.allocated_clusters = b->allocated;
  i.thin = b->thin();
  i.read_only = b->read_only();
  i.snapshot = b->is_snapshot();
  i.parent = b->parent;
  i.clones = b->clones;
  i.xattrs.insert(b->xattrs[0].begin(), b->xattrs[0].end());
  i.internal_xattrs.insert(b->xattrs[1].begin(), b->xattrs[1].end());
  return i;
}

Result<std::vector<ClusterRun>> Store::cluster_runs(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  std::vector<ClusterRun> out;
  const uint64_t size = b->size;
  uint64_t next = 0;
  b->extents.for_each([&](uint64_t i, uint32_t v) {
    if (i >= size) return;  // check() reports it; it is not part of the blob
    const int64_t dev = int64_t{v} - 1;
    if (i > next) out.push_back({next, i - next, -1});
    ClusterRun* last = out.empty() ? nullptr : &out.back();
    if (last && last->device_cluster >= 0 && last->first + last->count == i &&
        last->device_cluster + static_cast<int64_t>(last->count) == dev)
      ++last->count;
    else
      out.push_back({i, 1, dev});
    next = i + 1;
  });
  if (next < size) out.push_back({next, size - next, -1});
  return out;
}

uint64_t Store::checkpoint_pages_needed() {
  std::lock_guard lock(mu_);
  return std::max<size_t>(1, pack_records(model_->checkpoint_records(), kPagePayload).size());
}

StoreInfo Store::store_info() {
  std::lock_guard lock(mu_);
  StoreInfo s;
  s.cluster_size = sb_.cluster_size;
  s.io_unit = sb_.io_unit;
  s.total_clusters = sb_.num_clusters;
  // Reserved clusters are free in every sense that matters to a user.
  s.free_clusters = model_->free_clusters();
  s.blobs = model_->blobs().size();
  s.journal_pages_used = journal_used();
  s.journal_pages = sb_.journal_pages;
  s.recovered = recovered_;
  s.uuid = uuid_string(sb_.uuid);
  s.data_offset = sb_.data_start * kPageSize;
  s.checkpoint_pages = sb_.ckpt_pages;
  s.dirty_clusters = model_->dirty_unowned();
  s.next_id = model_->next_id();
  return s;
}

Result<std::shared_ptr<Blob>> Store::open(BlobId id) {
  std::lock_guard lock(mu_);
  Status st;
  BlobMeta* b = find_blob(id, &st);
  if (!b) return st;
  auto& slot = open_[id];
  if (auto existing = slot.lock()) return existing;
  std::shared_ptr<Blob> blob(new Blob(b));
  slot = blob;
  return blob;
}

Status Store::close(std::shared_ptr<Blob> blob) {
  if (!blob) return Status(Errc::invalid_argument, "close of a null blob");
  std::lock_guard lock(mu_);
  BlobId id = blob->id();
  blob.reset();
  if (auto it = open_.find(id); it != open_.end() && it->second.expired()) open_.erase(it);
  return Status::Ok();
}

}  // namespace sluice::blob
